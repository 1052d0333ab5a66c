// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";

/// @title HostileWallet
/// @notice Test double of a malicious smart-contract wallet (ERC-1271) whose answer anyone can
/// switch at any time, as a front-running attacker would between a relayer's gas estimate and
/// its transaction. Used only by tests; never deployed by the registry.
contract HostileWallet is IERC1271 {
    /// @notice How `isValidSignature` answers.
    enum Mode {
        Valid, // the magic value for any hash and signature
        BurnGas, // loops until the call runs out of gas
        Revert, // reverts
        Short, // returns 3 bytes instead of a 32-byte word
        Reject // returns 0xffffffff
    }

    /// @notice The current answer.
    Mode public mode;

    /// @notice Switch the answer; anyone may call it (this is an attacker's wallet).
    /// @param mode_ The new mode.
    function setMode(Mode mode_) external {
        mode = mode_;
    }

    /// @notice ERC-1271 check whose answer depends on `mode`.
    /// @param hash Ignored.
    /// @param signature Ignored.
    /// @return magicValue The magic value in mode Valid, else 0xffffffff.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4 magicValue) {
        (hash, signature);
        Mode m = mode;
        if (m == Mode.BurnGas) {
            uint256 x;
            while (true) {
                x = uint256(keccak256(abi.encode(x)));
            }
        }
        if (m == Mode.Revert) revert("no");
        if (m == Mode.Short) {
            assembly ("memory-safe") {
                mstore(0, 0x1626ba7e00000000000000000000000000000000000000000000000000000000)
                return(0, 3)
            }
        }
        if (m == Mode.Reject) return 0xffffffff;
        return IERC1271.isValidSignature.selector;
    }
}
