// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {WalletSignatures} from "./WalletSignatures.sol";

/// @title LicenceRegistry
/// @notice Public ledger of licence grants over ISCC declarations of an IsccRegistry. A grant is
/// a claim signed by its grantor: "I licence declaration `isccId` to `licensee` (or to everyone)
/// in these territories, for these uses, over this period, on these terms". Like a declaration,
/// the ledger records the claim and the indexer judges it: the contract checks signature, nonce,
/// deadline and well-formedness only, never whether the grantor owns the declaration or holds
/// the parent grant (rights are often acquired off chain, priority of content is only known off
/// chain, and a cross-contract call would cost every grant gas). A grant the grantor had no
/// right to make shows up as a licence conflict off chain.
/// @dev No admin, no upgradeability. Everything the indexer needs travels in the events.
/// Storage holds only what on-chain rules need:
/// - `_grants[grantId]`: low 160 bits the grantor (non-zero: the grant exists, so its nonce is
///   spent), bit 160 set once the grant is terminated;
/// - `_licensees[grantId]`: the licensee of an addressed grant (public grants store nothing);
/// - `_invalidated[grantor][word]`: nonces the grantor invalidated before using them. A nonce
///   is used when its grant exists or its bit is set here, so a grant writes one new slot, not
///   two (the grant id is keccak256(grantor, nonce), which the grant slot is keyed by).
contract LicenceRegistry is EIP712 {
    /// @notice A licence grant as its grantor signs it (EIP-712 type `Grant`).
    /// @param isccId ISCC-ID body of the declaration licensed (in `registry`).
    /// @param grantor The account that grants and signs (EOA or ERC-1271 wallet).
    /// @param licensee The account licensed; the zero address for a public licence.
    /// @param parent Grant id of the parent grant of a sublicence; zero for a grant of its own.
    /// @param territories ISO 3166-1 alpha-2 codes, ASCII upper case, two bytes each, strictly
    /// ascending: the territories licensed, or with `worldwide` the ones excluded.
    /// @param worldwide True: the whole world except `territories` (which may be empty).
    /// @param uses Bitmask over the use vocabulary (registry/ledger/terms.py); not zero.
    /// @param conditions Bit 0 commercial use allowed, bit 1 derivatives allowed, bit 2
    /// attribution required; higher bits must be zero.
    /// @param start Unix seconds from which the licence runs (inclusive).
    /// @param end Unix seconds at which it ends (exclusive); 0 for no end.
    /// @param exclusive Whether the licence is exclusive for its territories, uses and period.
    /// @param sublicensable Whether the licensee may grant sublicences under it.
    /// @param termsUrl Where the licence terms document is; at most MAX_TERMS_URL_LENGTH bytes.
    /// @param termsHash sha256 of the terms document's bytes, zero if none.
    /// @param nonce Unordered nonce of the grantor, single use; with the grantor it makes the
    /// grant id.
    /// @param deadline Unix time after which the signature is no longer accepted (ignored by
    /// `grant`, where the transaction is the consent).
    struct Grant {
        uint64 isccId;
        address grantor;
        address licensee;
        bytes32 parent;
        bytes territories;
        bool worldwide;
        uint32 uses;
        uint8 conditions;
        uint64 start;
        uint64 end;
        bool exclusive;
        bool sublicensable;
        string termsUrl;
        bytes32 termsHash;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice One entry of a batch: a grant and its grantor's signature.
    /// @param grant The signed grant.
    /// @param signature EIP-712 signature of `grant` by its grantor.
    struct SignedGrant {
        Grant grant;
        bytes signature;
    }

    /// @notice A party's signed consent to terminate a grant (EIP-712 type `Termination`).
    /// @param grantId The grant to terminate.
    /// @param by Who terminates: the grant's grantor or its licensee; the signer.
    /// @param deadline Unix time after which the signature is no longer accepted.
    struct Termination {
        bytes32 grantId;
        address by;
        uint256 deadline;
    }

    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(uint64 isccId,address grantor,address licensee,bytes32 parent,bytes territories,bool worldwide,uint32 uses,uint8 conditions,uint64 start,uint64 end,bool exclusive,bool sublicensable,string termsUrl,bytes32 termsHash,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant TERMINATION_TYPEHASH =
        keccak256("Termination(bytes32 grantId,address by,uint256 deadline)");

    /// @notice Longest terms URL accepted, in bytes; bounds what a relayer pays for calldata.
    uint256 public constant MAX_TERMS_URL_LENGTH = 2048;
    /// @notice Most territory codes in one grant (ISO 3166-1 has 249).
    uint256 public constant MAX_TERRITORIES = 250;
    /// @notice Gas given to a smart wallet's `isValidSignature` (ERC-1271), as in IsccRegistry:
    /// a wallet can cost a transaction at most this much; out of gas, a revert or a malformed
    /// answer within it makes that one signature invalid.
    uint256 public constant WALLET_CHECK_GAS = WalletSignatures.CHECK_GAS;

    uint256 private constant TERMINATED = 1 << 160;
    uint8 private constant CONDITION_BITS = 0x07;

    /// @notice The IsccRegistry whose declarations this ledger licenses (informational: no call
    /// is made to it).
    address public immutable registry;

    mapping(bytes32 grantId => uint256 state) private _grants;
    mapping(bytes32 grantId => address licensee) private _licensees;
    mapping(address grantor => mapping(uint256 word => uint256 bits)) private _invalidated;

    /// @notice A grant was recorded.
    /// @param grantId keccak256(abi.encode(grantor, nonce)).
    /// @param isccId ISCC-ID body of the declaration licensed.
    /// @param grantor The grantor (signer, or sender of a direct grant).
    /// @param grant The grant as signed (its deadline is meaningless for a direct grant).
    /// @param grantedAt The block's timestamp, so the indexer needs no block header for it.
    event LicenceGranted(
        bytes32 indexed grantId, uint64 indexed isccId, address indexed grantor, Grant grant, uint64 grantedAt
    );

    /// @notice A grant was terminated by its grantor or its licensee; it is final.
    /// @param grantId The grant.
    /// @param by Who terminated it.
    /// @param terminatedAt The block's timestamp.
    event LicenceTerminated(bytes32 indexed grantId, address indexed by, uint64 terminatedAt);

    /// @notice A grantor invalidated nonces before they were used.
    event NoncesInvalidated(address indexed grantor, uint256 indexed word, uint256 mask);

    /// @notice An entry of a batch was skipped; the other entries were processed.
    /// @param index Position of the entry in the batch.
    /// @param grantor The entry's grantor.
    /// @param nonce The entry's nonce.
    /// @param reason ABI-encoded custom error (same encoding as a revert of `grantFor`).
    event GrantFailed(uint256 index, address indexed grantor, uint256 nonce, bytes reason);

    /// @notice The registry address is zero.
    error InvalidRegistry();
    /// @notice The ISCC-ID body is zero, which no declaration has.
    error InvalidIsccId();
    /// @notice The grant names no use.
    error NoUses();
    /// @notice Condition bits other than the three defined ones are set.
    error InvalidConditions(uint8 conditions);
    /// @notice The territory list is malformed: odd length, more than MAX_TERRITORIES codes, a
    /// byte outside A-Z, or codes not strictly ascending. `index` is the first bad code's.
    error InvalidTerritories(uint256 index);
    /// @notice A grant that is not worldwide names no territory.
    error NoTerritory();
    /// @notice The end is not after the start (and not 0 for no end).
    error InvalidPeriod(uint64 start, uint64 end);
    /// @notice The terms URL is longer than MAX_TERMS_URL_LENGTH bytes.
    error TermsUrlTooLong(uint256 length);
    /// @notice The parent grant does not exist in this ledger.
    error UnknownParent(bytes32 parent);
    /// @notice The signature's deadline has passed.
    error DeadlineExpired(uint256 deadline);
    /// @notice The grantor already used (or invalidated) this nonce.
    error NonceAlreadyUsed(address grantor, uint256 nonce);
    /// @notice The signature is not the account's signature of this message on this ledger.
    error InvalidSignature(address signer);
    /// @notice The sender of a direct grant is not its grantor.
    error NotGrantor(address grantor, address sender);
    /// @notice No grant with this id exists.
    error UnknownGrant(bytes32 grantId);
    /// @notice The grant was terminated before; a termination is final.
    error AlreadyTerminated(bytes32 grantId);
    /// @notice `account` is neither the grantor nor the licensee of the grant.
    error NotParty(bytes32 grantId, address account);
    /// @notice The nonce word is above the last word of uint256 nonces.
    error InvalidNonceWord(uint256 word);

    /// @param registry_ The IsccRegistry whose declarations are licensed here.
    constructor(address registry_) EIP712("LicenceRegistry", "1") {
        if (registry_ == address(0)) revert InvalidRegistry();
        registry = registry_;
    }

    // --- grants -----------------------------------------------------------------------------------

    /// @notice Record a grant as its grantor; the transaction itself is the consent, so the
    /// deadline is ignored. The nonce is still spent: it makes the grant id.
    /// @param request The grant; its `grantor` must be the sender.
    /// @return grantId keccak256(abi.encode(grantor, nonce)).
    function grant(Grant calldata request) external returns (bytes32 grantId) {
        if (request.grantor != msg.sender) revert NotGrantor(request.grantor, msg.sender);
        bytes memory reason;
        (grantId, reason) = _grant(request, false, bytes32(0), msg.data[0:0]);
        if (reason.length != 0) _revertWith(reason);
    }

    /// @notice Submit a grant signed by its grantor (EOA or ERC-1271 wallet); anyone may submit
    /// it and pay the gas.
    /// @param request The signed grant.
    /// @param signature EIP-712 `Grant` signature of the grantor for this ledger.
    /// @return grantId keccak256(abi.encode(grantor, nonce)).
    function grantFor(Grant calldata request, bytes calldata signature) external returns (bytes32 grantId) {
        bytes memory reason;
        (grantId, reason) = _grant(request, true, hashGrant(request), signature);
        if (reason.length != 0) _revertWith(reason);
    }

    /// @notice Submit many signed grants in one transaction. An entry that fails any check (a
    /// smart wallet's check included, bounded by WALLET_CHECK_GAS) is skipped with a
    /// `GrantFailed` event carrying the encoded error, and the others still count. Nothing of a
    /// skipped entry is stored (its nonce stays unused). An entry may name as parent a grant
    /// made earlier in the same batch.
    /// @param batch The signed grants.
    /// @return grantIds The grant id per entry, zero for a skipped entry.
    function grantBatch(SignedGrant[] calldata batch) external returns (bytes32[] memory grantIds) {
        grantIds = new bytes32[](batch.length);
        for (uint256 i = 0; i < batch.length; ++i) {
            Grant calldata g = batch[i].grant;
            (bytes32 grantId, bytes memory reason) = _grant(g, true, hashGrant(g), batch[i].signature);
            if (reason.length != 0) emit GrantFailed(i, g.grantor, g.nonce, reason);
            else grantIds[i] = grantId;
        }
    }

    // --- terminations -----------------------------------------------------------------------------

    /// @notice Terminate a grant as its grantor, or as its licensee giving the licence up.
    /// @param grantId The grant.
    function terminate(bytes32 grantId) external {
        _terminate(grantId, msg.sender);
    }

    /// @notice Terminate a grant with the signature of its grantor or licensee; anyone may
    /// submit it. A grant is terminated once, so the signature cannot be replayed.
    /// @param request The signed termination.
    /// @param signature EIP-712 `Termination` signature by `request.by`.
    function terminateFor(Termination calldata request, bytes calldata signature) external {
        if (block.timestamp > request.deadline) revert DeadlineExpired(request.deadline);
        // Party and state first: a stranger's or a stale termination costs no wallet call.
        _checkParty(request.grantId, request.by);
        if (!WalletSignatures.isValid(request.by, hashTermination(request), signature)) revert InvalidSignature(request.by);
        _terminate(request.grantId, request.by);
    }

    /// @notice Invalidate unused nonces of the sender, so grants signed with them can no longer
    /// be submitted. Nonces already spent by a grant stay as they are.
    /// @param word Index of the 256-nonce word (nonce >> 8).
    /// @param mask Bits to mark as used (bit i stands for nonce word * 256 + i).
    function invalidateNonces(uint256 word, uint256 mask) external {
        if (word > type(uint256).max >> 8) revert InvalidNonceWord(word);
        _invalidated[msg.sender][word] |= mask;
        emit NoncesInvalidated(msg.sender, word, mask);
    }

    // --- views ----------------------------------------------------------------------------------

    /// @notice The grantor of a grant, or the zero address if no such grant exists.
    /// @param grantId The grant.
    /// @return grantor The grantor.
    function grantorOf(bytes32 grantId) external view returns (address grantor) {
        return address(uint160(_grants[grantId]));
    }

    /// @notice The licensee of a grant; the zero address for a public grant (or none).
    /// @param grantId The grant.
    /// @return licensee The licensee.
    function licenseeOf(bytes32 grantId) external view returns (address licensee) {
        return _licensees[grantId];
    }

    /// @notice Whether a grant was terminated.
    /// @param grantId The grant.
    /// @return terminated True once its grantor or licensee terminated it.
    function isTerminated(bytes32 grantId) external view returns (bool terminated) {
        return _grants[grantId] & TERMINATED != 0;
    }

    /// @notice Whether `grantor` has used or invalidated `nonce`.
    /// @param grantor The grantor's account.
    /// @param nonce The nonce.
    /// @return used True if a grant with this nonce can no longer be submitted.
    function isNonceUsed(address grantor, uint256 nonce) external view returns (bool used) {
        return _nonceUsed(grantor, nonce, grantIdOf(grantor, nonce));
    }

    /// @notice The id a grant by `grantor` with `nonce` has (or will have).
    /// @param grantor The grantor.
    /// @param nonce The grant's nonce.
    /// @return grantId keccak256(abi.encode(grantor, nonce)).
    function grantIdOf(address grantor, uint256 nonce) public pure returns (bytes32 grantId) {
        return keccak256(abi.encode(grantor, nonce));
    }

    /// @notice The EIP-712 digest a grantor signs for `request` on this ledger.
    /// @param request The grant.
    /// @return digest The typed-data digest (domain: LicenceRegistry, 1, chain id, this contract).
    function hashGrant(Grant calldata request) public view returns (bytes32 digest) {
        // Two encodes of static words concatenated are one encode; in one call the sixteen
        // fields and the type hash would not fit the EVM's reachable stack.
        bytes memory head = abi.encode(
            GRANT_TYPEHASH,
            request.isccId,
            request.grantor,
            request.licensee,
            request.parent,
            keccak256(request.territories),
            request.worldwide,
            request.uses,
            request.conditions
        );
        bytes memory tail = abi.encode(
            request.start,
            request.end,
            request.exclusive,
            request.sublicensable,
            keccak256(bytes(request.termsUrl)),
            request.termsHash,
            request.nonce,
            request.deadline
        );
        return _hashTypedDataV4(keccak256(bytes.concat(head, tail)));
    }

    /// @notice The EIP-712 digest a grantor or licensee signs to terminate a grant here.
    /// @param request The termination.
    /// @return digest The typed-data digest.
    function hashTermination(Termination calldata request) public view returns (bytes32 digest) {
        return _hashTypedDataV4(
            keccak256(abi.encode(TERMINATION_TYPEHASH, request.grantId, request.by, request.deadline))
        );
    }

    // --- internals ----------------------------------------------------------------------------------

    /// @dev All checks of a grant; on failure returns the encoded error instead of reverting, so
    /// a batch can skip the entry. Storage is written only on success; the signature is checked
    /// last, so a malformed or replayed entry costs no wallet call.
    function _grant(Grant calldata g, bool signed, bytes32 digest, bytes calldata signature)
        private
        returns (bytes32 grantId, bytes memory reason)
    {
        reason = _validate(g);
        if (reason.length != 0) return (0, reason);
        if (signed && block.timestamp > g.deadline) {
            return (0, abi.encodeWithSelector(DeadlineExpired.selector, g.deadline));
        }
        grantId = grantIdOf(g.grantor, g.nonce);
        if (_nonceUsed(g.grantor, g.nonce, grantId)) {
            return (0, abi.encodeWithSelector(NonceAlreadyUsed.selector, g.grantor, g.nonce));
        }
        if (signed && !WalletSignatures.isValid(g.grantor, digest, signature)) {
            return (0, abi.encodeWithSelector(InvalidSignature.selector, g.grantor));
        }
        _grants[grantId] = uint256(uint160(g.grantor));
        if (g.licensee != address(0)) _licensees[grantId] = g.licensee;
        emit LicenceGranted(grantId, g.isccId, g.grantor, g, uint64(block.timestamp));
    }

    /// @dev Well-formedness of a grant; the encoded error, or empty.
    function _validate(Grant calldata g) private view returns (bytes memory reason) {
        if (g.isccId == 0) return abi.encodeWithSelector(InvalidIsccId.selector);
        if (g.uses == 0) return abi.encodeWithSelector(NoUses.selector);
        if (g.conditions & ~CONDITION_BITS != 0) {
            return abi.encodeWithSelector(InvalidConditions.selector, g.conditions);
        }
        bytes calldata codes = g.territories;
        uint256 length = codes.length;
        if (length % 2 != 0 || length > 2 * MAX_TERRITORIES) {
            return abi.encodeWithSelector(InvalidTerritories.selector, length / 2);
        }
        uint256 previous = 0;
        for (uint256 i = 0; i < length; i += 2) {
            uint8 a = uint8(codes[i]);
            uint8 b = uint8(codes[i + 1]);
            uint256 code = (uint256(a) << 8) | b;
            // 'A' = 0x41, 'Z' = 0x5A; ascending codes make each code appear once.
            if (a < 0x41 || a > 0x5A || b < 0x41 || b > 0x5A || code <= previous) {
                return abi.encodeWithSelector(InvalidTerritories.selector, i / 2);
            }
            previous = code;
        }
        if (!g.worldwide && length == 0) return abi.encodeWithSelector(NoTerritory.selector);
        if (g.end != 0 && g.end <= g.start) return abi.encodeWithSelector(InvalidPeriod.selector, g.start, g.end);
        if (bytes(g.termsUrl).length > MAX_TERMS_URL_LENGTH) {
            return abi.encodeWithSelector(TermsUrlTooLong.selector, bytes(g.termsUrl).length);
        }
        if (g.parent != bytes32(0) && _grants[g.parent] == 0) {
            return abi.encodeWithSelector(UnknownParent.selector, g.parent);
        }
    }

    function _nonceUsed(address grantor, uint256 nonce, bytes32 grantId) private view returns (bool) {
        return _grants[grantId] != 0 || (_invalidated[grantor][nonce >> 8] >> (nonce & 0xFF)) & 1 != 0;
    }

    /// @dev Reverts unless `account` may terminate the grant now: it exists, is live, and
    /// `account` is its grantor or (for an addressed grant) its licensee.
    function _checkParty(bytes32 grantId, address account) private view returns (uint256 state) {
        state = _grants[grantId];
        if (state == 0) revert UnknownGrant(grantId);
        if (state & TERMINATED != 0) revert AlreadyTerminated(grantId);
        if (address(uint160(state)) != account && (account == address(0) || _licensees[grantId] != account)) {
            revert NotParty(grantId, account);
        }
    }

    function _terminate(bytes32 grantId, address by) private {
        uint256 state = _checkParty(grantId, by);
        _grants[grantId] = state | TERMINATED;
        emit LicenceTerminated(grantId, by, uint64(block.timestamp));
    }

    function _revertWith(bytes memory reason) private pure {
        assembly ("memory-safe") {
            revert(add(reason, 32), mload(reason))
        }
    }
}
