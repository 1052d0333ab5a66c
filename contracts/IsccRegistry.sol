// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title IsccRegistry
/// @notice Public ledger of ISCC declarations: a declarer states, under their key, that a piece of
/// content (identified by its ISCC-CODE and datahash) is theirs, and the registry mints an ISCC-ID
/// that orders the declaration in time. The owner of a declaration may revoke it, update its
/// metahash and gateway, or transfer it; every action has a signed variant any relayer can submit.
/// @dev No admin, no upgradeability. Everything the indexer needs travels in the events. Storage
/// holds only what on-chain rules need:
/// - `lastTimestamp`: unique, monotonic ISCC-IDs;
/// - `_records[account][nonce >> 2]`: four 64-bit lanes per slot, one per nonce. A lane is 0 while
///   the nonce is unused, USED once a signature consumed it (or it was invalidated, or the
///   declaration made with it was revoked or transferred away), and otherwise holds the ISCC-ID of
///   the live declaration the account made with that nonce. One write thus both spends the nonce
///   and records ownership, bound exactly to the ISCC-ID, and a declarer's consecutive nonces
///   share slots (a fresh slot every fourth declaration);
/// - `_owners[isccId]`: the owner of a declaration made directly (no nonce) or transferred.
contract IsccRegistry is EIP712 {
    /// @notice A declaration as the declarer signs it (EIP-712 typed data).
    /// @param isccCode Binary ISCC-CODE (2-byte header + unit bodies).
    /// @param datahash blake3 digest of the file (32 bytes, the Instance-Code's full hash).
    /// @param metahash blake3 digest of the JCS-canonical metadata JSON, or zero.
    /// @param gateway URL or URI template where metadata and content can be found; may be empty.
    /// @param nonce Unordered nonce: any value the declarer has not used; it becomes the
    /// declaration's record handle.
    /// @param deadline Unix time after which the signature is no longer accepted.
    struct Declaration {
        bytes isccCode;
        bytes32 datahash;
        bytes32 metahash;
        string gateway;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice One entry of a batch: a declaration, its declarer and the declarer's signature.
    /// @param declaration The signed declaration.
    /// @param declarer The account that signed (EOA or ERC-1271 wallet).
    /// @param signature EIP-712 signature of `declaration` by `declarer`.
    struct SignedDeclaration {
        Declaration declaration;
        address declarer;
        bytes signature;
    }

    /// @notice The owner's signed consent to revoke a declaration.
    /// @param isccId ISCC-ID body of the declaration.
    /// @param nonce Unused nonce of the owner (replay protection).
    /// @param deadline Unix time after which the signature is no longer accepted.
    struct Revocation {
        uint64 isccId;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice The owner's signed consent to replace a declaration's metahash and gateway.
    /// @param isccId ISCC-ID body of the declaration.
    /// @param metahash New metahash (or zero).
    /// @param gateway New gateway (may be empty).
    /// @param nonce Unused nonce of the owner (replay protection).
    /// @param deadline Unix time after which the signature is no longer accepted.
    struct Update {
        uint64 isccId;
        bytes32 metahash;
        string gateway;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice The owner's signed consent to hand a declaration to a new owner.
    /// @param isccId ISCC-ID body of the declaration.
    /// @param to The new owner.
    /// @param nonce Unused nonce of the owner (replay protection).
    /// @param deadline Unix time after which the signature is no longer accepted.
    struct Transfer {
        uint64 isccId;
        address to;
        uint256 nonce;
        uint256 deadline;
    }

    bytes32 public constant DECLARATION_TYPEHASH = keccak256(
        "Declaration(bytes isccCode,bytes32 datahash,bytes32 metahash,string gateway,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REVOCATION_TYPEHASH = keccak256("Revocation(uint64 isccId,uint256 nonce,uint256 deadline)");
    bytes32 public constant UPDATE_TYPEHASH = keccak256(
        "Update(uint64 isccId,bytes32 metahash,string gateway,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant TRANSFER_TYPEHASH =
        keccak256("Transfer(uint64 isccId,address to,uint256 nonce,uint256 deadline)");

    /// @notice Longest gateway string accepted, in bytes; bounds what a declarer pays for calldata.
    uint256 public constant MAX_GATEWAY_LENGTH = 1024;

    /// @dev Shortest ISCC-CODE: 2-byte header + Data-Code and Instance-Code bodies (64 bits each).
    uint256 private constant MIN_CODE_LENGTH = 18;
    /// @dev Longest ISCC-CODE: header + five 64-bit units, or a WIDE code (two 128-bit units).
    uint256 private constant MAX_CODE_LENGTH = 42;
    /// @dev Lane value of a spent nonce without a live declaration. Real ISCC-ID bodies are at
    /// least block.timestamp * 1e6 << 12, so 1 never collides with one.
    uint64 private constant USED = 1;
    uint256 private constant LANE_MASK = 0xFFFFFFFFFFFFFFFF;

    /// @notice ISCC-ID realm (ISCC-ID SubType): 0 for test chains, 1 for production.
    uint8 public immutable realm;
    /// @notice HUB-ID of this registry, the low 12 bits of every ISCC-ID body it mints.
    uint16 public immutable hubId;

    /// @notice Microsecond timestamp of the last minted ISCC-ID.
    uint64 public lastTimestamp;

    mapping(address account => mapping(uint256 slot => uint256 lanes)) private _records;
    mapping(uint64 isccId => address owner) private _owners;

    /// @notice A declaration was accepted and an ISCC-ID minted for it.
    /// @param isccId 64-bit ISCC-ID v1 body: (microsecond timestamp << 12) | hubId.
    /// @param declarer The account that declared (signer, or sender of a direct declaration).
    /// @param datahash blake3 digest of the declared file.
    /// @param isccCode Binary ISCC-CODE.
    /// @param metahash blake3 digest of the metadata, or zero.
    /// @param gateway Gateway URL or URI template, may be empty.
    event Declared(
        uint64 indexed isccId,
        address indexed declarer,
        bytes32 indexed datahash,
        bytes isccCode,
        bytes32 metahash,
        string gateway
    );

    /// @notice The owner replaced a declaration's metahash and gateway.
    event Updated(uint64 indexed isccId, address indexed owner, bytes32 metahash, string gateway);

    /// @notice A declaration changed owner.
    event Transferred(uint64 indexed isccId, address indexed from, address indexed to);

    /// @notice The owner revoked a declaration; it has no owner from now on.
    event Revoked(uint64 indexed isccId, address indexed owner);

    /// @notice A declarer invalidated nonces before they were used.
    event NoncesInvalidated(address indexed declarer, uint256 indexed word, uint256 mask);

    /// @notice An entry of `declareBatch` was skipped; the other entries were processed.
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

    /// @param realm_ ISCC-ID realm: 0 on test chains, 1 in production.
    /// @param hubId_ HUB-ID embedded in every minted ISCC-ID (0-4095).
    constructor(uint8 realm_, uint16 hubId_) EIP712("IsccRegistry", "1") {
        if (realm_ > 1 || hubId_ > 0xFFF) revert InvalidHub(realm_, hubId_);
        realm = realm_;
        hubId = hubId_;
    }

    // --- declarations ---------------------------------------------------------------------------

    /// @notice Declare content as the sender; the transaction itself is the declarer's consent.
    /// @dev Without a nonce there is no lane to record ownership in, so a direct declaration
    /// takes one `_owners` slot; signed declarations are cheaper to keep.
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
        _owners[isccId] = msg.sender;
        emit Declared(isccId, msg.sender, datahash, isccCode, metahash, gateway);
    }

    /// @notice Submit a declaration signed by its declarer (EOA or ERC-1271 wallet); anyone may
    /// submit it and pay the gas.
    /// @param declaration The signed declaration.
    /// @param declarer The account whose signature this is and who becomes the declarer.
    /// @param signature EIP-712 signature of `declaration` by `declarer` for this registry.
    /// @return isccId The minted ISCC-ID body.
    function declareFor(Declaration calldata declaration, address declarer, bytes calldata signature)
        external
        returns (uint64 isccId)
    {
        uint64 last;
        bytes memory reason;
        (isccId, last, reason) = _declareSigned(declaration, declarer, signature, lastTimestamp);
        if (reason.length != 0) _revertWith(reason);
        lastTimestamp = last;
    }

    /// @notice Submit many signed declarations in one transaction. An entry that fails any check
    /// is skipped with a `DeclarationFailed` event carrying the encoded error, and the others
    /// still count: a relayer can mix declarations of many declarers without one bad entry
    /// costing the rest. Nothing of a skipped entry is stored (its nonce stays unused).
    /// @param batch The signed declarations.
    /// @return isccIds The minted ISCC-ID body per entry, 0 for a skipped entry.
    function declareBatch(SignedDeclaration[] calldata batch) external returns (uint64[] memory isccIds) {
        isccIds = new uint64[](batch.length);
        uint64 last = lastTimestamp;
        for (uint256 i = 0; i < batch.length; ++i) {
            SignedDeclaration calldata entry = batch[i];
            bytes memory reason;
            (isccIds[i], last, reason) = _declareSigned(entry.declaration, entry.declarer, entry.signature, last);
            if (reason.length != 0) {
                emit DeclarationFailed(i, entry.declarer, entry.declaration.nonce, reason);
            }
        }
        lastTimestamp = last;
    }

    // --- owner actions ----------------------------------------------------------------------------

    /// @notice Revoke a declaration the sender owns; afterwards nobody owns it.
    /// @param isccId ISCC-ID body of the declaration.
    /// @param record The nonce the sender declared it with (its record handle); ignored for a
    /// declaration made directly or received by transfer.
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
            keccak256(abi.encode(REVOCATION_TYPEHASH, revocation.isccId, revocation.nonce, revocation.deadline))
        );
        _consumeSignature(owner, revocation.nonce, revocation.deadline, digest, signature);
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
                    request.nonce,
                    request.deadline
                )
            )
        );
        _consumeSignature(owner, request.nonce, request.deadline, digest, signature);
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
            keccak256(abi.encode(TRANSFER_TYPEHASH, request.isccId, request.to, request.nonce, request.deadline))
        );
        _consumeSignature(owner, request.nonce, request.deadline, digest, signature);
        _transfer(request.isccId, record, owner, request.to);
    }

    /// @notice Invalidate unused nonces of the sender, so messages signed with them can no longer
    /// be submitted. Nonces that already carry a declaration are left as they are.
    /// @param word Index of the 256-nonce word (nonce >> 8).
    /// @param mask Bits to mark as used (bit i stands for nonce word * 256 + i).
    function invalidateNonces(uint256 word, uint256 mask) external {
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
    /// @param word Index of the word (nonce >> 8).
    /// @return bits Bit i is set if nonce word * 256 + i is used.
    function nonceBitmap(address declarer, uint256 word) external view returns (uint256 bits) {
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

    /// @notice Find the nonce under which `account` holds `isccId`, scanning `count` nonces from
    /// `start` (for clients that know the ISCC-ID but not its record handle).
    /// @param account The account.
    /// @param isccId The ISCC-ID body.
    /// @param start First nonce to look at.
    /// @param count How many nonces to look at.
    /// @return found Whether the record was found.
    /// @return nonce Its nonce, if found.
    function findRecord(address account, uint64 isccId, uint256 start, uint256 count)
        external
        view
        returns (bool found, uint256 nonce)
    {
        if (isccId <= USED) return (false, 0);
        for (nonce = start; nonce < start + count; ++nonce) {
            if (_lane(account, nonce) == isccId) return (true, nonce);
        }
        return (false, 0);
    }

    /// @notice The current owner of a declaration, or the zero address if it was revoked or never
    /// declared.
    /// @param isccId ISCC-ID body.
    /// @param declarer Its declarer (from the `Declared` event).
    /// @param record Its record handle: the nonce of a signed declaration (any value otherwise).
    /// @return owner The owner.
    function ownerOf(uint64 isccId, address declarer, uint256 record) external view returns (address owner) {
        owner = _owners[isccId];
        if (owner == address(0) && isccId > USED && _lane(declarer, record) == isccId) owner = declarer;
    }

    /// @notice The EIP-712 digest a declarer signs for `declaration` on this registry and chain.
    /// @param declaration The declaration to hash.
    /// @return digest The typed-data digest (domain: IsccRegistry, 1, chain id, this contract).
    function hashDeclaration(Declaration calldata declaration) public view returns (bytes32 digest) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    DECLARATION_TYPEHASH,
                    keccak256(declaration.isccCode),
                    declaration.datahash,
                    declaration.metahash,
                    keccak256(bytes(declaration.gateway)),
                    declaration.nonce,
                    declaration.deadline
                )
            )
        );
    }

    // --- internals ----------------------------------------------------------------------------------

    /// @dev All checks of a signed declaration; on failure returns the encoded error instead of
    /// reverting, so a batch can skip the entry. Storage is written only on success.
    function _declareSigned(Declaration calldata d, address declarer, bytes calldata signature, uint64 last)
        private
        returns (uint64 isccId, uint64 newLast, bytes memory reason)
    {
        reason = _validate(d.isccCode, d.datahash, d.gateway);
        if (reason.length != 0) return (0, last, reason);
        if (block.timestamp > d.deadline) {
            return (0, last, abi.encodeWithSelector(DeadlineExpired.selector, d.deadline));
        }
        (uint256 key, uint256 shift) = _position(d.nonce);
        uint256 lanes = _records[declarer][key];
        if ((lanes >> shift) & LANE_MASK != 0) {
            return (0, last, abi.encodeWithSelector(NonceAlreadyUsed.selector, declarer, d.nonce));
        }
        if (!SignatureChecker.isValidSignatureNow(declarer, hashDeclaration(d), signature)) {
            return (0, last, abi.encodeWithSelector(InvalidSignature.selector, declarer));
        }
        (isccId, newLast) = _nextId(last);
        _records[declarer][key] = lanes | (uint256(isccId) << shift);
        _emitDeclared(isccId, declarer, d);
    }

    /// @dev Its own function only to keep `_declareSigned` within the EVM's stack limit.
    function _emitDeclared(uint64 isccId, address declarer, Declaration calldata d) private {
        emit Declared(isccId, declarer, d.datahash, d.isccCode, d.metahash, d.gateway);
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

    /// @dev Check deadline and signature of an owner action and spend its nonce.
    function _consumeSignature(
        address owner,
        uint256 nonce,
        uint256 deadline,
        bytes32 digest,
        bytes calldata signature
    ) private {
        if (block.timestamp > deadline) revert DeadlineExpired(deadline);
        (uint256 key, uint256 shift) = _position(nonce);
        uint256 lanes = _records[owner][key];
        if ((lanes >> shift) & LANE_MASK != 0) revert NonceAlreadyUsed(owner, nonce);
        if (!SignatureChecker.isValidSignatureNow(owner, digest, signature)) revert InvalidSignature(owner);
        _records[owner][key] = lanes | (uint256(USED) << shift);
    }

    /// @dev Ends `account`'s ownership of `isccId`, reverting with NotOwner unless it has it.
    /// A declaration is owned either through the `_owners` slot (direct or transferred) or
    /// through the lane `record` of its declarer, which holds exactly this ISCC-ID; every minted
    /// ID is written to exactly one of the two, and moving it clears the old place.
    function _release(uint64 isccId, uint256 record, address account) private {
        address owner = _owners[isccId];
        if (owner != address(0)) {
            if (owner != account) revert NotOwner(isccId, account);
            delete _owners[isccId];
            return;
        }
        (uint256 key, uint256 shift) = _position(record);
        uint256 lanes = _records[account][key];
        if (isccId <= USED || (lanes >> shift) & LANE_MASK != isccId) revert NotOwner(isccId, account);
        _records[account][key] = lanes ^ (uint256(isccId ^ USED) << shift);
    }

    function _revoke(uint64 isccId, uint256 record, address owner) private {
        _release(isccId, record, owner);
        emit Revoked(isccId, owner);
    }

    function _update(uint64 isccId, uint256 record, address owner, bytes32 metahash, string calldata gateway)
        private
    {
        if (bytes(gateway).length > MAX_GATEWAY_LENGTH) revert GatewayTooLong(bytes(gateway).length);
        address current = _owners[isccId];
        if (current != address(0)) {
            if (current != owner) revert NotOwner(isccId, owner);
        } else if (isccId <= USED || _lane(owner, record) != isccId) {
            revert NotOwner(isccId, owner);
        }
        emit Updated(isccId, owner, metahash, gateway);
    }

    function _transfer(uint64 isccId, uint256 record, address owner, address to) private {
        if (to == address(0)) revert InvalidNewOwner(to);
        _release(isccId, record, owner);
        _owners[isccId] = to;
        emit Transferred(isccId, owner, to);
    }

    function _position(uint256 nonce) private pure returns (uint256 key, uint256 shift) {
        return (nonce >> 2, (nonce & 3) * 64);
    }

    function _lane(address account, uint256 nonce) private view returns (uint64) {
        (uint256 key, uint256 shift) = _position(nonce);
        return uint64(_records[account][key] >> shift);
    }

    /// @dev Block timestamps have one-second resolution, so declarations within one second get
    /// consecutive microseconds after the last one: IDs stay unique and strictly increasing.
    function _nextId(uint64 last) private view returns (uint64 isccId, uint64 timestamp) {
        timestamp = uint64(block.timestamp) * 1_000_000;
        if (timestamp <= last) timestamp = last + 1;
        return ((timestamp << 12) | hubId, timestamp);
    }

    function _revertWith(bytes memory reason) private pure {
        assembly ("memory-safe") {
            revert(add(reason, 32), mload(reason))
        }
    }
}
