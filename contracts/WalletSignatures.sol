// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @notice Too little gas is left to give a wallet's signature check its full stipend: the
/// transaction's gas limit is too low (a relayer's estimate error, never an entry's fault).
error InsufficientGasForWalletCheck();

/// @title WalletSignatures
/// @notice The signature check of IsccRegistry and LicenceRegistry: a key's (ECDSA) signature,
/// or a smart wallet's (ERC-1271) answer within a fixed stipend.
library WalletSignatures {
    /// @dev Gas given to a wallet's `isValidSignature`, fixed so that a wallet can cost a
    /// transaction at most this much: out of gas, a revert or a malformed answer within it
    /// makes that one signature invalid.
    uint256 internal constant CHECK_GAS = 100_000;
    /// @dev gasleft() needed before the wallet call so it really gets CHECK_GAS (EIP-150 passes
    /// on at most 63/64) after paying for a cold account access and the call's memory.
    uint256 private constant CALL_RESERVE = CHECK_GAS + CHECK_GAS / 63 + 5000;

    /// @dev ECDSA recovery against the account first, so an EOA with code (an EIP-7702
    /// delegation) keeps its plain signatures; then ERC-1271 for accounts with code. Written
    /// out instead of OpenZeppelin's SignatureChecker, which tries ECDSA only for accounts
    /// without code and forwards all remaining gas to the wallet: here the wallet gets
    /// CHECK_GAS, and only the first 32 bytes of its answer are copied (no return-data bomb).
    /// @param account The account that must have signed.
    /// @param digest The EIP-712 digest signed.
    /// @param signature 65 bytes for a key; any length for a wallet.
    /// @return valid Whether `account` signed `digest`.
    function isValid(address account, bytes32 digest, bytes calldata signature) internal view returns (bool valid) {
        (address recovered, ECDSA.RecoverError error,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (error == ECDSA.RecoverError.NoError && recovered == account) return true;
        if (account.code.length == 0) return false;
        if (gasleft() < CALL_RESERVE) revert InsufficientGasForWalletCheck();
        bytes4 selector = IERC1271.isValidSignature.selector;
        uint256 stipend = CHECK_GAS;
        assembly ("memory-safe") {
            let length := signature.length
            let ptr := mload(0x40)
            mstore(ptr, selector)
            mstore(add(ptr, 0x04), digest)
            mstore(add(ptr, 0x24), 0x40)
            mstore(add(ptr, 0x44), length)
            calldatacopy(add(ptr, 0x64), signature.offset, length)
            mstore(add(add(ptr, 0x64), length), 0)
            length := shl(5, shr(5, add(length, 0x1F)))
            mstore(0x00, 0)
            let success := staticcall(stipend, account, ptr, add(length, 0x64), 0x00, 0x20)
            valid := and(success, and(gt(returndatasize(), 0x1f), eq(mload(0x00), selector)))
        }
    }
}
