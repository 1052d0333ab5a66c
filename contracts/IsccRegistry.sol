// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {WalletSignatures} from "./WalletSignatures.sol";

/// @title IsccRegistry (v2)
/// @notice Public ledger of ISCC declarations: a declarer states, under their key, that a piece of
/// content (identified by its ISCC-CODE and datahash) is theirs, and the registry mints an ISCC-ID
/// that orders the declaration in time. A declaration is plain (its priority is its ISCC-ID's
/// time) or sealed (a hiding commitment is put on chain first; the later reveal proves inclusion
/// and its priority is the commitment's time, so copying a revealed declaration from the mempool
/// gains nothing). The owner of a declaration may revoke it, update its metahash and gateway, or
/// transfer it; every action has a signed variant any relayer can submit, bound to the
/// declaration's action count so that a change of state voids older signatures.
/// @dev No admin, no upgradeability. Everything the indexer needs travels in the events. Storage
/// holds only what on-chain rules need:
/// - `lastTimestamp`: unique, monotonic ISCC-IDs and commitment times;
/// - `_records[account][nonce >> 2]`: four 64-bit lanes per slot, one per nonce. A lane is 0 while
///   the nonce is unused, USED once a signature consumed it (or it was invalidated, or the
///   declaration made with it was revoked or transferred away), and otherwise holds the ISCC-ID of
///   the live declaration the account made with that nonce. One write thus both spends the nonce
///   and records ownership, bound exactly to the ISCC-ID, and a declarer's consecutive nonces
///   share slots (a fresh slot every fourth declaration);
/// - `_states[isccId]`: low 160 bits the owner of a declaration made directly (no nonce) or
///   transferred, high 96 bits how many owner actions changed the declaration (0 until the first);
/// - `_commitments[root]`: the microsecond time of a sealed commitment.
contract IsccRegistry is EIP712 {
    /// @notice A declaration as the declarer signs it (EIP-712 typed data). Signed under the type
    /// name `Declaration` for a plain declaration and `SealedDeclaration` for a sealed one, so a
    /// signature made for one kind can never be submitted as the other.
    /// @param declarer The account that declares and signs (EOA or ERC-1271 wallet).
    /// @param isccCode Binary ISCC-CODE (2-byte header + unit bodies).
    /// @param datahash blake3 digest of the file (32 bytes, the Instance-Code's full hash).
    /// @param metahash blake3 digest of the JCS-canonical metadata JSON, or zero.
    /// @param gateway URL or URI template where metadata and content can be found; may be empty.
    /// @param nonce Unordered nonce: any value the declarer has not used; it becomes the
    /// declaration's record handle.
    /// @param deadline Unix time after which the signature is no longer accepted.
    struct Declaration {
        address declarer;
        bytes isccCode;
        bytes32 datahash;
        bytes32 metahash;
        string gateway;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice One entry of a batch: a declaration and its declarer's signature.
    /// @param declaration The signed declaration.
    /// @param signature EIP-712 signature of `declaration` by its declarer.
    struct SignedEntry {
        Declaration declaration;
        bytes signature;
    }

    /// @notice One entry of a sealed reveal: a declaration signed as `SealedDeclaration`, its
    /// signature, and the salt that hid it in the commitment.
    /// @param declaration The signed declaration.
    /// @param signature EIP-712 `SealedDeclaration` signature by its declarer.
    /// @param salt Random 32 bytes; the leaf is keccak256(keccak256(abi.encode(digest, salt))).
    struct SealedEntry {
        Declaration declaration;
        bytes signature;
        bytes32 salt;
    }

    /// @notice The owner's signed consent to revoke a declaration.
    /// @param isccId ISCC-ID body of the declaration.
    /// @param actions The declaration's action count when signing (see `actionsOf`).
    /// @param deadline Unix time after which the signature is no longer accepted.
    struct Revocation {
        uint64 isccId;
        uint256 actions;
        uint256 deadline;
    }

    /// @notice The owner's signed consent to replace a declaration's metahash and gateway.
    /// @param isccId ISCC-ID body of the declaration.
    /// @param metahash New metahash (or zero).
    /// @param gateway New gateway (may be empty).
    /// @param actions The declaration's action count when signing (see `actionsOf`).
    /// @param deadline Unix time after which the signature is no longer accepted.
    struct Update {
        uint64 isccId;
        bytes32 metahash;
        string gateway;
        uint256 actions;
        uint256 deadline;
    }

    /// @notice The owner's signed consent to hand a declaration to a new owner.
    /// @param isccId ISCC-ID body of the declaration.
    /// @param to The new owner.
    /// @param actions The declaration's action count when signing (see `actionsOf`).
    /// @param deadline Unix time after which the signature is no longer accepted.
    struct Transfer {
        uint64 isccId;
        address to;
        uint256 actions;
        uint256 deadline;
    }

    bytes32 public constant DECLARATION_TYPEHASH = keccak256(
        "Declaration(address declarer,bytes isccCode,bytes32 datahash,bytes32 metahash,string gateway,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant SEALED_DECLARATION_TYPEHASH = keccak256(
        "SealedDeclaration(address declarer,bytes isccCode,bytes32 datahash,bytes32 metahash,string gateway,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REVOCATION_TYPEHASH =
        keccak256("Revocation(uint64 isccId,uint256 actions,uint256 deadline)");
    bytes32 public constant UPDATE_TYPEHASH = keccak256(
        "Update(uint64 isccId,bytes32 metahash,string gateway,uint256 actions,uint256 deadline)"
    );
    bytes32 public constant TRANSFER_TYPEHASH =
        keccak256("Transfer(uint64 isccId,address to,uint256 actions,uint256 deadline)");

    /// @notice Longest gateway string accepted, in bytes; bounds what a declarer pays for calldata.
    uint256 public constant MAX_GATEWAY_LENGTH = 1024;

    /// @notice Gas given to a smart wallet's `isValidSignature` (ERC-1271), fixed so that a wallet
    /// can cost a transaction at most this much: out of gas, a revert or a malformed answer within
    /// it makes that one signature invalid. Wallets whose check needs more declare directly.
    uint256 public constant WALLET_CHECK_GAS = WalletSignatures.CHECK_GAS;

    /// @dev Shortest ISCC-CODE: 2-byte header + Data-Code and Instance-Code bodies (64 bits each).
    uint256 private constant MIN_CODE_LENGTH = 18;
    /// @dev Longest ISCC-CODE: header + five 64-bit units, or a WIDE code (two 128-bit units).
    uint256 private constant MAX_CODE_LENGTH = 42;
    /// @dev Lane value of a spent nonce without a live declaration. Real ISCC-ID bodies are at
    /// least block.timestamp * 1e6 << 12, so 1 never collides with one.
    uint64 private constant USED = 1;
    uint256 private constant LANE_MASK = 0xFFFFFFFFFFFFFFFF;
    /// @dev The ISCC-ID v1 body has 52 bits of microseconds (they run out in the year 2112).
    uint64 private constant MAX_TIMESTAMP = (1 << 52) - 1;
    /// @dev Number of 256-nonce words of uint256 nonces; larger words would shift bits out of
    /// their slot keys (word << 6 | slot) and land on small nonces.
    uint256 private constant WORD_LIMIT = 1 << 248;
    uint256 private constant OWNER_MASK = (1 << 160) - 1;
    uint256 private constant ONE_ACTION = 1 << 160;

    /// @notice ISCC-ID realm (ISCC-ID SubType): 0 for test chains, 1 for production.
    uint8 public immutable realm;
    /// @notice HUB-ID of this registry, the low 12 bits of every ISCC-ID body it mints.
    uint16 public immutable hubId;

    /// @notice Microsecond timestamp of the last minted ISCC-ID or commitment.
    uint64 public lastTimestamp;

    mapping(address account => mapping(uint256 slot => uint256 lanes)) private _records;
    mapping(uint64 isccId => uint256 state) private _states;
    mapping(bytes32 root => uint64 committedAt) private _commitments;

    /// @notice A declaration was accepted and an ISCC-ID minted for it.
    /// @param isccId 64-bit ISCC-ID v1 body: (microsecond timestamp << 12) | hubId.
    /// @param declarer The account that declared (signer, or sender of a direct declaration).
    /// @param datahash blake3 digest of the declared file.
    /// @param isccCode Binary ISCC-CODE.
    /// @param metahash blake3 digest of the metadata, or zero.
    /// @param gateway Gateway URL or URI template, may be empty.
    /// @param record The owner's record handle for owner actions: the signed declaration's nonce
    /// (0 for a direct declaration, whose handle is ignored).
    /// @param committedAt Microsecond time of the commitment of a sealed declaration (its
    /// priority), 0 for a plain one (whose priority is its ISCC-ID's time).
    event Declared(
        uint64 indexed isccId,
        address indexed declarer,
        bytes32 indexed datahash,
        bytes isccCode,
        bytes32 metahash,
        string gateway,
        uint256 record,
        uint64 committedAt
    );

    /// @notice A sealed commitment was recorded.
    /// @param root Merkle root of the commitment's leaves (a single leaf is its own root).
    /// @param committer Who sent it (a declarer or a relayer); it has no rights over the leaves.
    /// @param committedAt Its microsecond time, on the same clock as ISCC-IDs.
    event Committed(bytes32 indexed root, address indexed committer, uint64 committedAt);

    /// @notice The owner replaced a declaration's metahash and gateway.
    event Updated(uint64 indexed isccId, address indexed owner, bytes32 metahash, string gateway);

    /// @notice A declaration changed owner.
    event Transferred(uint64 indexed isccId, address indexed from, address indexed to);

    /// @notice The owner revoked a declaration; it has no owner from now on.
    event Revoked(uint64 indexed isccId, address indexed owner);

    /// @notice A declarer invalidated nonces before they were used.
    event NoncesInvalidated(address indexed declarer, uint256 indexed word, uint256 mask);

    /// @notice An entry of a batch was skipped; the other entries were processed.
    /// @param index Position of the entry in the batch.
    /// @param declarer The entry's declarer.
    /// @param nonce The entry's nonce.
    /// @param reason ABI-encoded custom error (same encoding as a revert of `declareFor`).
    event DeclarationFailed(uint256 index, address indexed declarer, uint256 nonce, bytes reason);

    /// @notice The realm is not 0 (test) or 1 (production), or the HUB-ID exceeds 12 bits.
    error InvalidHub(uint8 realm, uint16 hubId);
    /// @notice The ISCC-CODE is too short, too long, or its header is not of MainType ISCC.
    error InvalidIsccCode();
    /// @notice The datahash is zero.
    error InvalidDatahash();
    /// @notice The gateway is longer than MAX_GATEWAY_LENGTH bytes.
    error GatewayTooLong(uint256 length);
    /// @notice The signature's deadline has passed.
    error DeadlineExpired(uint256 deadline);
    /// @notice The declarer already used (or invalidated) this nonce.
    error NonceAlreadyUsed(address declarer, uint256 nonce);
    /// @notice The signature is not the account's signature of this message on this registry.
    error InvalidSignature(address declarer);
    /// @notice `account` does not own the declaration `isccId` (with the record handle given).
    error NotOwner(uint64 isccId, address account);
    /// @notice A declaration cannot be transferred to the zero address.
    error InvalidNewOwner(address to);
    /// @notice A signed owner action was made for another state of the declaration.
    error StaleAction(uint64 isccId, uint256 signedAt, uint256 current);
    /// @notice The nonce word is above the last word of uint256 nonces (2**248 - 1).
    error InvalidNonceWord(uint256 word);
    /// @notice The 52-bit microsecond field of the ISCC-ID is exhausted.
    error TimestampOverflow();
    /// @notice This root was committed before (its first commitment time stands).
    error AlreadyCommitted(bytes32 root);
    /// @notice No commitment with this root exists.
    error NotCommitted(bytes32 root);
    /// @notice The revealed leaves and proof do not rebuild the committed root.
    error InvalidReveal(bytes32 root);

    /// @param realm_ ISCC-ID realm: 0 on test chains, 1 in production.
    /// @param hubId_ HUB-ID embedded in every minted ISCC-ID (0-4095).
    constructor(uint8 realm_, uint16 hubId_) EIP712("IsccRegistry", "2") {
        if (realm_ > 1 || hubId_ > 0xFFF) revert InvalidHub(realm_, hubId_);
        realm = realm_;
        hubId = hubId_;
    }

    // --- declarations ---------------------------------------------------------------------------

    /// @notice Declare content as the sender; the transaction itself is the declarer's consent.
    /// @dev Without a nonce there is no lane to record ownership in, so a direct declaration
    /// takes one `_states` slot; signed declarations are cheaper to keep.
    /// @param isccCode Binary ISCC-CODE.
    /// @param datahash blake3 digest of the file.
    /// @param metahash blake3 digest of the metadata, or zero.
    /// @param gateway Gateway URL or URI template, may be empty.
    /// @return isccId The minted ISCC-ID body.
    function declare(bytes calldata isccCode, bytes32 datahash, bytes32 metahash, string calldata gateway)
        external
        returns (uint64 isccId)
    {
        bytes memory reason = _validate(isccCode, datahash, gateway);
        if (reason.length != 0) _revertWith(reason);
        uint64 last;
        (isccId, last) = _nextId(lastTimestamp);
        lastTimestamp = last;
        _states[isccId] = uint256(uint160(msg.sender));
        emit Declared(isccId, msg.sender, datahash, isccCode, metahash, gateway, 0, 0);
    }

    /// @notice Submit a declaration signed by its declarer (EOA or ERC-1271 wallet); anyone may
    /// submit it and pay the gas.
    /// @param declaration The signed declaration.
    /// @param signature EIP-712 `Declaration` signature of its declarer for this registry.
    /// @return isccId The minted ISCC-ID body.
    function declareFor(Declaration calldata declaration, bytes calldata signature)
        external
        returns (uint64 isccId)
    {
        bytes memory reason;
        (isccId, reason) = _declareSigned(declaration, signature, hashDeclaration(declaration), lastTimestamp, 0);
        if (reason.length != 0) _revertWith(reason);
        lastTimestamp = isccId >> 12;
    }

    /// @notice Submit many signed declarations in one transaction. An entry that fails any check
    /// (a smart wallet's check included, bounded by WALLET_CHECK_GAS) is skipped with a
    /// `DeclarationFailed` event carrying the encoded error, and the others still count: a
    /// relayer can mix declarations of many declarers without one bad entry costing the rest.
    /// Nothing of a skipped entry is stored (its nonce stays unused).
    /// @param batch The signed declarations.
    /// @return isccIds The minted ISCC-ID body per entry, 0 for a skipped entry.
    function declareBatch(SignedEntry[] calldata batch) external returns (uint64[] memory isccIds) {
        isccIds = new uint64[](batch.length);
        uint64 last = lastTimestamp;
        for (uint256 i = 0; i < batch.length; ++i) {
            Declaration calldata d = batch[i].declaration;
            (uint64 isccId, bytes memory reason) = _declareSigned(d, batch[i].signature, hashDeclaration(d), last, 0);
            if (reason.length != 0) emit DeclarationFailed(i, d.declarer, d.nonce, reason);
            else (isccIds[i], last) = (isccId, isccId >> 12);
        }
        lastTimestamp = last;
    }

    /// @notice Commit to sealed declarations without showing them: `root` is the Merkle root of
    /// their leaves (keccak256(keccak256(abi.encode(digest, salt))) each, `digest` the
    /// `SealedDeclaration` digest), or a single leaf. Anyone may commit; the commitment's time
    /// becomes the priority of every declaration later revealed under it.
    /// @param root The Merkle root (or single leaf).
    /// @return committedAt The commitment's microsecond time.
    function commit(bytes32 root) external returns (uint64 committedAt) {
        if (_commitments[root] != 0) revert AlreadyCommitted(root);
        (, committedAt) = _nextId(lastTimestamp);
        lastTimestamp = committedAt;
        _commitments[root] = committedAt;
        emit Committed(root, msg.sender, committedAt);
    }

    /// @notice Reveal sealed declarations committed under `root`. The leaves of `entries` (in
    /// order) and `proof`/`proofFlags` must rebuild `root` as an OpenZeppelin Merkle multiproof;
    /// revealing a whole commitment needs no proof and `entries.length - 1` true flags. Each
    /// entry is then checked like a `declareBatch` entry (failures are skipped with
    /// `DeclarationFailed`) and declared with the commitment's time as its priority.
    /// @param root A committed root.
    /// @param entries The revealed declarations with signatures and salts.
    /// @param proof Sibling hashes of the multiproof.
    /// @param proofFlags Multiproof flags.
    /// @return isccIds The minted ISCC-ID body per entry, 0 for a skipped entry.
    function reveal(
        bytes32 root,
        SealedEntry[] calldata entries,
        bytes32[] calldata proof,
        bool[] calldata proofFlags
    ) external returns (uint64[] memory isccIds) {
        uint64 committedAt = _commitments[root];
        if (committedAt == 0) revert NotCommitted(root);
        bytes32[] memory digests = new bytes32[](entries.length);
        bytes32[] memory leaves = new bytes32[](entries.length);
        for (uint256 i = 0; i < entries.length; ++i) {
            digests[i] = hashSealedDeclaration(entries[i].declaration);
            leaves[i] = keccak256(bytes.concat(Hashes.efficientKeccak256(digests[i], entries[i].salt)));
        }
        if (entries.length == 0 || !MerkleProof.multiProofVerifyCalldata(proof, proofFlags, root, leaves)) {
            revert InvalidReveal(root);
        }
        return _declareSealed(entries, digests, committedAt);
    }

    // --- owner actions ----------------------------------------------------------------------------

    /// @notice Revoke a declaration the sender owns; afterwards nobody owns it.
    /// @param isccId ISCC-ID body of the declaration.
    /// @param record The nonce the sender declared it with (its record handle, from `Declared`);
    /// ignored for a declaration made directly or received by transfer.
    function revoke(uint64 isccId, uint256 record) external {
        _revoke(isccId, record, msg.sender);
    }

    /// @notice Revoke a declaration with its owner's signature; anyone may submit it.
    /// @param revocation The signed revocation.
    /// @param record The owner's record handle of the declaration (see `revoke`).
    /// @param owner The owner who signed.
    /// @param signature EIP-712 signature of `revocation` by `owner`.
    function revokeFor(Revocation calldata revocation, uint256 record, address owner, bytes calldata signature)
        external
    {
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(REVOCATION_TYPEHASH, revocation.isccId, revocation.actions, revocation.deadline))
        );
        _checkAction(revocation.isccId, owner, revocation.actions, revocation.deadline, digest, signature);
        _revoke(revocation.isccId, record, owner);
    }

    /// @notice Replace the metahash and gateway of a declaration the sender owns.
    /// @param isccId ISCC-ID body of the declaration.
    /// @param record The owner's record handle of the declaration (see `revoke`).
    /// @param metahash New metahash (or zero).
    /// @param gateway New gateway (may be empty, at most MAX_GATEWAY_LENGTH bytes).
    function update(uint64 isccId, uint256 record, bytes32 metahash, string calldata gateway) external {
        _update(isccId, record, msg.sender, metahash, gateway);
    }

    /// @notice Update a declaration with its owner's signature; anyone may submit it.
    /// @param request The signed update.
    /// @param record The owner's record handle of the declaration (see `revoke`).
    /// @param owner The owner who signed.
    /// @param signature EIP-712 signature of `request` by `owner`.
    function updateFor(Update calldata request, uint256 record, address owner, bytes calldata signature) external {
        bytes32 digest = _hashTypedDataV4(
            keccak256(
                abi.encode(
                    UPDATE_TYPEHASH,
                    request.isccId,
                    request.metahash,
                    keccak256(bytes(request.gateway)),
                    request.actions,
                    request.deadline
                )
            )
        );
        _checkAction(request.isccId, owner, request.actions, request.deadline, digest, signature);
        _update(request.isccId, record, owner, request.metahash, request.gateway);
    }

    /// @notice Hand a declaration the sender owns to a new owner.
    /// @param isccId ISCC-ID body of the declaration.
    /// @param record The owner's record handle of the declaration (see `revoke`).
    /// @param to The new owner (not the zero address).
    function transfer(uint64 isccId, uint256 record, address to) external {
        _transfer(isccId, record, msg.sender, to);
    }

    /// @notice Transfer a declaration with its owner's signature; anyone may submit it.
    /// @param request The signed transfer.
    /// @param record The owner's record handle of the declaration (see `revoke`).
    /// @param owner The owner who signed.
    /// @param signature EIP-712 signature of `request` by `owner`.
    function transferFor(Transfer calldata request, uint256 record, address owner, bytes calldata signature)
        external
    {
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(TRANSFER_TYPEHASH, request.isccId, request.to, request.actions, request.deadline))
        );
        _checkAction(request.isccId, owner, request.actions, request.deadline, digest, signature);
        _transfer(request.isccId, record, owner, request.to);
    }

    /// @notice Invalidate unused nonces of the sender, so declarations signed with them can no
    /// longer be submitted. Nonces that already carry a declaration are left as they are.
    /// @param word Index of the 256-nonce word (nonce >> 8), below 2**248.
    /// @param mask Bits to mark as used (bit i stands for nonce word * 256 + i).
    function invalidateNonces(uint256 word, uint256 mask) external {
        if (word >= WORD_LIMIT) revert InvalidNonceWord(word);
        mapping(uint256 => uint256) storage records = _records[msg.sender];
        for (uint256 slot = 0; slot < 64; ++slot) {
            uint256 nibble = (mask >> (slot * 4)) & 0xF;
            if (nibble == 0) continue;
            uint256 key = (word << 6) | slot;
            uint256 lanes = records[key];
            for (uint256 lane = 0; lane < 4; ++lane) {
                uint256 shift = lane * 64;
                if (nibble & (1 << lane) != 0 && (lanes >> shift) & LANE_MASK == 0) lanes |= uint256(USED) << shift;
            }
            records[key] = lanes;
        }
        emit NoncesInvalidated(msg.sender, word, mask);
    }

    // --- views --------------------------------------------------------------------------------------

    /// @notice Whether `declarer` has used or invalidated `nonce`.
    /// @param declarer The declarer's account.
    /// @param nonce The nonce to look up.
    /// @return used True if a signature with this nonce can no longer be submitted.
    function isNonceUsed(address declarer, uint256 nonce) external view returns (bool used) {
        return _lane(declarer, nonce) != 0;
    }

    /// @notice Used nonces of `declarer` in one 256-nonce word, as a bitmap.
    /// @param declarer The declarer's account.
    /// @param word Index of the word (nonce >> 8), below 2**248.
    /// @return bits Bit i is set if nonce word * 256 + i is used.
    function nonceBitmap(address declarer, uint256 word) external view returns (uint256 bits) {
        if (word >= WORD_LIMIT) revert InvalidNonceWord(word);
        mapping(uint256 => uint256) storage records = _records[declarer];
        for (uint256 slot = 0; slot < 64; ++slot) {
            uint256 lanes = records[(word << 6) | slot];
            if (lanes == 0) continue;
            for (uint256 lane = 0; lane < 4; ++lane) {
                if ((lanes >> (lane * 64)) & LANE_MASK != 0) bits |= 1 << (slot * 4 + lane);
            }
        }
    }

    /// @notice The record of `account` under `nonce`: 0 unused, 1 used without a live
    /// declaration, else the ISCC-ID body of the live declaration made with that nonce.
    /// @param account The account.
    /// @param nonce The nonce.
    /// @return record The lane's value.
    function recordOf(address account, uint256 nonce) external view returns (uint64 record) {
        return _lane(account, nonce);
    }

    /// @notice The current owner of a declaration, or the zero address if it was revoked or never
    /// declared.
    /// @param isccId ISCC-ID body.
    /// @param declarer Its declarer (from the `Declared` event).
    /// @param record Its record handle (from the `Declared` event).
    /// @return owner The owner.
    function ownerOf(uint64 isccId, address declarer, uint256 record) external view returns (address owner) {
        owner = address(uint160(_states[isccId]));
        if (owner == address(0) && isccId > USED && _lane(declarer, record) == isccId) owner = declarer;
    }

    /// @notice How many owner actions (updates, transfers) changed a declaration so far; a signed
    /// owner action names this count and is valid only while it is current.
    /// @param isccId ISCC-ID body.
    /// @return actions The action count.
    function actionsOf(uint64 isccId) external view returns (uint256 actions) {
        return _states[isccId] >> 160;
    }

    /// @notice The microsecond time of the commitment with this root, 0 if none.
    /// @param root A Merkle root or single leaf.
    /// @return committedAt The commitment's time.
    function commitmentOf(bytes32 root) external view returns (uint64 committedAt) {
        return _commitments[root];
    }

    /// @notice The EIP-712 digest a declarer signs for a plain declaration on this registry.
    /// @param declaration The declaration to hash.
    /// @return digest The typed-data digest (domain: IsccRegistry, 2, chain id, this contract).
    function hashDeclaration(Declaration calldata declaration) public view returns (bytes32 digest) {
        return _hashTypedDataV4(_structHash(DECLARATION_TYPEHASH, declaration));
    }

    /// @notice The EIP-712 digest a declarer signs for a sealed declaration on this registry.
    /// @param declaration The declaration to hash.
    /// @return digest The typed-data digest of the `SealedDeclaration`.
    function hashSealedDeclaration(Declaration calldata declaration) public view returns (bytes32 digest) {
        return _hashTypedDataV4(_structHash(SEALED_DECLARATION_TYPEHASH, declaration));
    }

    // --- internals ----------------------------------------------------------------------------------

    /// @dev The second half of `reveal`, apart only to stay within the EVM's stack limit.
    function _declareSealed(SealedEntry[] calldata entries, bytes32[] memory digests, uint64 committedAt)
        private
        returns (uint64[] memory isccIds)
    {
        isccIds = new uint64[](entries.length);
        uint64 last = lastTimestamp;
        for (uint256 i = 0; i < entries.length; ++i) {
            Declaration calldata d = entries[i].declaration;
            (uint64 isccId, bytes memory reason) = _declareSigned(d, entries[i].signature, digests[i], last, committedAt);
            if (reason.length != 0) emit DeclarationFailed(i, d.declarer, d.nonce, reason);
            else (isccIds[i], last) = (isccId, isccId >> 12);
        }
        lastTimestamp = last;
    }

    function _structHash(bytes32 typehash, Declaration calldata d) private pure returns (bytes32) {
        return keccak256(
            abi.encode(
                typehash,
                d.declarer,
                keccak256(d.isccCode),
                d.datahash,
                d.metahash,
                keccak256(bytes(d.gateway)),
                d.nonce,
                d.deadline
            )
        );
    }

    /// @dev All checks of a signed declaration; on failure returns the encoded error instead of
    /// reverting, so a batch can skip the entry. Storage is written only on success. The new
    /// last timestamp is the minted ID's (isccId >> 12), which keeps this within the stack limit.
    function _declareSigned(
        Declaration calldata d,
        bytes calldata signature,
        bytes32 digest,
        uint64 last,
        uint64 committedAt
    ) private returns (uint64 isccId, bytes memory reason) {
        reason = _validate(d.isccCode, d.datahash, d.gateway);
        if (reason.length != 0) return (0, reason);
        if (block.timestamp > d.deadline) return (0, abi.encodeWithSelector(DeadlineExpired.selector, d.deadline));
        (uint256 key, uint256 shift) = _position(d.nonce);
        uint256 lanes = _records[d.declarer][key];
        if ((lanes >> shift) & LANE_MASK != 0) {
            return (0, abi.encodeWithSelector(NonceAlreadyUsed.selector, d.declarer, d.nonce));
        }
        if (!WalletSignatures.isValid(d.declarer, digest, signature)) {
            return (0, abi.encodeWithSelector(InvalidSignature.selector, d.declarer));
        }
        (isccId,) = _nextId(last);
        _records[d.declarer][key] = lanes | (uint256(isccId) << shift);
        _emitDeclared(isccId, d, committedAt);
    }

    /// @dev Its own function only to keep `_declareSigned` within the EVM's stack limit.
    function _emitDeclared(uint64 isccId, Declaration calldata d, uint64 committedAt) private {
        emit Declared(isccId, d.declarer, d.datahash, d.isccCode, d.metahash, d.gateway, d.nonce, committedAt);
    }

    /// @dev Cheap structural checks; the indexer verifies the rest (units, datahash vs Instance-Code).
    function _validate(bytes calldata isccCode, bytes32 datahash, string calldata gateway)
        private
        pure
        returns (bytes memory reason)
    {
        if (isccCode.length < MIN_CODE_LENGTH || isccCode.length > MAX_CODE_LENGTH || uint8(isccCode[0]) >> 4 != 5) {
            return abi.encodeWithSelector(InvalidIsccCode.selector);
        }
        if (datahash == bytes32(0)) return abi.encodeWithSelector(InvalidDatahash.selector);
        if (bytes(gateway).length > MAX_GATEWAY_LENGTH) {
            return abi.encodeWithSelector(GatewayTooLong.selector, bytes(gateway).length);
        }
    }

    /// @dev Check deadline, state binding and signature of a signed owner action. Replays need
    /// no nonce: every accepted action changes the action count (or ends ownership), so the same
    /// signature is stale afterwards.
    function _checkAction(
        uint64 isccId,
        address owner,
        uint256 actions,
        uint256 deadline,
        bytes32 digest,
        bytes calldata signature
    ) private view {
        if (block.timestamp > deadline) revert DeadlineExpired(deadline);
        uint256 current = _states[isccId] >> 160;
        if (actions != current) revert StaleAction(isccId, actions, current);
        if (!WalletSignatures.isValid(owner, digest, signature)) revert InvalidSignature(owner);
    }

    /// @dev Ends `account`'s ownership of `isccId`, reverting with NotOwner unless it has it, and
    /// returns the declaration's state slot with the owner bits cleared. A declaration is owned
    /// either through its `_states` slot (direct or transferred) or through the lane `record` of
    /// its declarer, which holds exactly this ISCC-ID; every minted ID is written to exactly one
    /// of the two, and moving it clears the old place.
    function _release(uint64 isccId, uint256 record, address account) private returns (uint256 state) {
        state = _states[isccId];
        address owner = address(uint160(state));
        if (owner != address(0)) {
            if (owner != account) revert NotOwner(isccId, account);
            return state & ~OWNER_MASK;
        }
        (uint256 key, uint256 shift) = _position(record);
        uint256 lanes = _records[account][key];
        if (isccId <= USED || (lanes >> shift) & LANE_MASK != isccId) revert NotOwner(isccId, account);
        _records[account][key] = lanes ^ (uint256(isccId ^ USED) << shift);
    }

    function _revoke(uint64 isccId, uint256 record, address owner) private {
        uint256 state = _release(isccId, record, owner);
        if (state != _states[isccId]) _states[isccId] = state;
        emit Revoked(isccId, owner);
    }

    function _update(uint64 isccId, uint256 record, address owner, bytes32 metahash, string calldata gateway)
        private
    {
        if (bytes(gateway).length > MAX_GATEWAY_LENGTH) revert GatewayTooLong(bytes(gateway).length);
        uint256 state = _states[isccId];
        address current = address(uint160(state));
        if (current != address(0)) {
            if (current != owner) revert NotOwner(isccId, owner);
        } else if (isccId <= USED || _lane(owner, record) != isccId) {
            revert NotOwner(isccId, owner);
        }
        _states[isccId] = state + ONE_ACTION;
        emit Updated(isccId, owner, metahash, gateway);
    }

    function _transfer(uint64 isccId, uint256 record, address owner, address to) private {
        if (to == address(0)) revert InvalidNewOwner(to);
        uint256 state = _release(isccId, record, owner);
        _states[isccId] = (state + ONE_ACTION) | uint256(uint160(to));
        emit Transferred(isccId, owner, to);
    }

    function _position(uint256 nonce) private pure returns (uint256 key, uint256 shift) {
        return (nonce >> 2, (nonce & 3) * 64);
    }

    function _lane(address account, uint256 nonce) private view returns (uint64) {
        (uint256 key, uint256 shift) = _position(nonce);
        return uint64(_records[account][key] >> shift);
    }

    /// @dev Block timestamps have one-second resolution, so IDs (and commitments) within one
    /// second get consecutive microseconds after the last one: they stay unique and strictly
    /// increasing. The 52-bit field must not wrap, which would make IDs go back in time.
    function _nextId(uint64 last) private view returns (uint64 isccId, uint64 timestamp) {
        timestamp = uint64(block.timestamp) * 1_000_000;
        if (timestamp <= last) timestamp = last + 1;
        if (timestamp > MAX_TIMESTAMP) revert TimestampOverflow();
        return ((timestamp << 12) | hubId, timestamp);
    }

    function _revertWith(bytes memory reason) private pure {
        assembly ("memory-safe") {
            revert(add(reason, 32), mload(reason))
        }
    }
}
