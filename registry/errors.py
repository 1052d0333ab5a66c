"""The registry's error types: one hierarchy, mapped to one-line CLI messages and JSON 4xx."""


class RegistryError(Exception):
    """Base of every error the registry raises on purpose; its message is meant for the user."""


class InputError(RegistryError):
    """A file, path or argument given by the user cannot be used."""


class SoundTooShort(InputError):
    """Audio too short for Chromaprint, so for an Audio-Code (about 3 s of sound are needed).
    `match` still looks such a file up by its finer sound segments."""


class UnsupportedMedia(RegistryError):
    """The file's media kind cannot (yet) be turned into an ISCC-CODE."""


class InvalidCode(RegistryError):
    """A string is not a valid ISCC-CODE, ISCC-ID, datahash or address."""


class InvalidDeclaration(RegistryError):
    """A declaration or its signature does not verify, or the contract rejected it."""


class KeyFileError(RegistryError):
    """A key file is missing, malformed or cannot be decrypted."""


class ChainUnavailable(RegistryError):
    """The RPC node cannot be reached, or no registry is deployed where one is expected."""


class StoreError(RegistryError):
    """The index store is missing or unusable."""


class TransactionLost(RegistryError):
    """A sent transaction is gone from the chain and cannot be resent as it was: its nonce was
    used by another transaction (or a reorg dropped it and the node refuses it again)."""


class InsufficientFunds(RegistryError):
    """The account that must pay for a transaction has too little ether."""


class NotFound(RegistryError):
    """Nothing is known under the identifier asked for (a case, a subscription, a declaration)."""


class Forbidden(RegistryError):
    """The caller may not do this: a wrong secret, or a limit on what one party may hold."""


class InvalidTerms(InputError):
    """Licence terms (territories, uses, conditions, a term, a DDEX deal) that cannot be used:
    an unknown code or name, an end before the start, or a deal our vocabulary cannot say."""


class InvalidNote(RegistryError):
    """A signed note (usage report, case response) is malformed or its signature does not
    verify for the domain it is checked against."""


class InvalidGrant(RegistryError):
    """A licence grant or termination the licence ledger refuses (or would refuse): a bad
    signature, a spent nonce, a passed deadline, a grant already terminated, a stranger
    terminating, malformed terms."""
