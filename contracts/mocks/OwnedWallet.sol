// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title OwnedWallet
/// @notice Test double of a smart-contract wallet (ERC-1271): a signature is valid when the
/// wallet's owner key signed the hash. Used only by tests; never deployed by the registry.
contract OwnedWallet is IERC1271 {
    /// @notice The key whose signatures this wallet accepts.
    address public immutable owner;

    /// @param owner_ The key whose signatures this wallet accepts.
    constructor(address owner_) {
        owner = owner_;
    }

    /// @notice ERC-1271 check: the magic value if `owner` signed `hash`, else 0xffffffff.
    /// @param hash The digest that was signed.
    /// @param signature 65-byte ECDSA signature by the owner.
    /// @return magicValue IERC1271.isValidSignature.selector when valid.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4 magicValue) {
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecover(hash, signature);
        if (error == ECDSA.RecoverError.NoError && signer == owner) return IERC1271.isValidSignature.selector;
        return 0xffffffff;
    }
}
