// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title IsccRegistry
/// @notice Public ledger of ISCC declarations: a declarer states, under their key, that a piece of
/// content (identified by its ISCC-CODE and datahash) is theirs, and the registry mints an ISCC-ID
/// that orders the declaration in time.
/// @dev No admin, no upgradeability. Everything the indexer needs travels in the events; the only
/// storage is what on-chain rules need: the last minted timestamp (unique, monotonic IDs) and the
/// declarers' used nonces (replay protection for signed declarations).
contract IsccRegistry is EIP712 {
    /// @notice A declaration as the declarer signs it (EIP-712 typed data).
    /// @param isccCode Binary ISCC-CODE (2-byte header + unit bodies).
    /// @param datahash blake3 digest of the file (32 bytes, the Instance-Code's full hash).
    /// @param metahash blake3 digest of the JCS-canonical metadata JSON, or zero.
    /// @param gateway URL or URI template where metadata and content can be found; may be empty.
    /// @param nonce Unordered nonce: any unused value; bit `nonce & 255` of word `nonce >> 8`.
    /// @param deadline Unix time after which the signature is no longer accepted.
    struct Declaration {
        bytes isccCode;
        bytes32 datahash;
        bytes32 metahash;
        string gateway;
        uint256 nonce;
        uint256 deadline;
    }

    bytes32 public constant DECLARATION_TYPEHASH = keccak256(
        "Declaration(bytes isccCode,bytes32 datahash,bytes32 metahash,string gateway,uint256 nonce,uint256 deadline)"
    );

    /// @notice Longest gateway string accepted, in bytes; bounds what a declarer pays for calldata.
    uint256 public constant MAX_GATEWAY_LENGTH = 1024;

    /// @dev Shortest ISCC-CODE: 2-byte header + Data-Code and Instance-Code bodies (64 bits each).
    uint256 private constant MIN_CODE_LENGTH = 18;
    /// @dev Longest ISCC-CODE: header + five 64-bit units, or a WIDE code (two 128-bit units).
    uint256 private constant MAX_CODE_LENGTH = 42;

    /// @notice ISCC-ID realm (ISCC-ID SubType): 0 for test chains, 1 for production.
    uint8 public immutable realm;
    /// @notice HUB-ID of this registry, the low 12 bits of every ISCC-ID body it mints.
    uint16 public immutable hubId;

    /// @notice Microsecond timestamp of the last minted ISCC-ID.
    uint64 public lastTimestamp;

    /// @notice Used nonces of each declarer: word index => 256 bits.
    mapping(address declarer => mapping(uint256 word => uint256 bits)) public nonceBitmap;

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

    /// @notice A declarer invalidated nonces before they were used.
    event NoncesInvalidated(address indexed declarer, uint256 indexed word, uint256 mask);

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
    /// @notice The signature is not the declarer's signature of this declaration on this registry.
    error InvalidSignature(address declarer);

    /// @param realm_ ISCC-ID realm: 0 on test chains, 1 in production.
    /// @param hubId_ HUB-ID embedded in every minted ISCC-ID (0-4095).
    constructor(uint8 realm_, uint16 hubId_) EIP712("IsccRegistry", "1") {
        if (realm_ > 1 || hubId_ > 0xFFF) revert InvalidHub(realm_, hubId_);
        realm = realm_;
        hubId = hubId_;
    }

    /// @notice Declare content as the sender; the transaction itself is the declarer's consent.
    /// @param isccCode Binary ISCC-CODE.
    /// @param datahash blake3 digest of the file.
    /// @param metahash blake3 digest of the metadata, or zero.
    /// @param gateway Gateway URL or URI template, may be empty.
    /// @return isccId The minted ISCC-ID body.
    function declare(bytes calldata isccCode, bytes32 datahash, bytes32 metahash, string calldata gateway)
        external
        returns (uint64 isccId)
    {
        _validate(isccCode, datahash, gateway);
        isccId = _mintId();
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
        _validate(declaration.isccCode, declaration.datahash, declaration.gateway);
        if (block.timestamp > declaration.deadline) revert DeadlineExpired(declaration.deadline);
        _useNonce(declarer, declaration.nonce);
        if (!SignatureChecker.isValidSignatureNow(declarer, hashDeclaration(declaration), signature)) {
            revert InvalidSignature(declarer);
        }
        isccId = _mintId();
        emit Declared(
            isccId, declarer, declaration.datahash, declaration.isccCode, declaration.metahash, declaration.gateway
        );
    }

    /// @notice Invalidate unused nonces of the sender, so declarations signed with them can no
    /// longer be submitted.
    /// @param word Index of the 256-nonce word (nonce >> 8).
    /// @param mask Bits to mark as used (bit i stands for nonce word * 256 + i).
    function invalidateNonces(uint256 word, uint256 mask) external {
        nonceBitmap[msg.sender][word] |= mask;
        emit NoncesInvalidated(msg.sender, word, mask);
    }

    /// @notice Whether `declarer` has used or invalidated `nonce`.
    /// @param declarer The declarer's account.
    /// @param nonce The nonce to look up.
    /// @return used True if a signature with this nonce can no longer be submitted.
    function isNonceUsed(address declarer, uint256 nonce) external view returns (bool used) {
        return nonceBitmap[declarer][nonce >> 8] & (1 << (nonce & 0xFF)) != 0;
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

    /// @dev Cheap structural checks; the indexer verifies the rest (units, datahash vs Instance-Code).
    function _validate(bytes calldata isccCode, bytes32 datahash, string calldata gateway) private pure {
        if (isccCode.length < MIN_CODE_LENGTH || isccCode.length > MAX_CODE_LENGTH || uint8(isccCode[0]) >> 4 != 5) {
            revert InvalidIsccCode();
        }
        if (datahash == bytes32(0)) revert InvalidDatahash();
        if (bytes(gateway).length > MAX_GATEWAY_LENGTH) revert GatewayTooLong(bytes(gateway).length);
    }

    function _useNonce(address declarer, uint256 nonce) private {
        uint256 bit = 1 << (nonce & 0xFF);
        uint256 bits = nonceBitmap[declarer][nonce >> 8];
        if (bits & bit != 0) revert NonceAlreadyUsed(declarer, nonce);
        nonceBitmap[declarer][nonce >> 8] = bits | bit;
    }

    /// @dev Block timestamps have one-second resolution, so declarations within one second get
    /// consecutive microseconds after the last one: IDs stay unique and strictly increasing.
    function _mintId() private returns (uint64 isccId) {
        uint64 timestamp = uint64(block.timestamp) * 1_000_000;
        uint64 last = lastTimestamp;
        if (timestamp <= last) timestamp = last + 1;
        lastTimestamp = timestamp;
        return (timestamp << 12) | hubId;
    }
}
