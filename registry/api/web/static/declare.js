// Declare the checked file from a browser wallet (EIP-1193): the service prepares the EIP-712
// typed data, the wallet signs it (eth_signTypedData_v4), the relay sends it (no gas for the
// creator), and the page follows the job until this service has indexed the ISCC-ID.
"use strict";
(function () {
  const CHAINS = {
    1: "Ethereum", 10: "OP Mainnet", 137: "Polygon", 8453: "Base", 42161: "Arbitrum One",
    11155111: "Sepolia testnet", 17000: "Holesky testnet", 84532: "Base Sepolia testnet",
    31337: "Hardhat devnet",
  };
  const USER_REJECTED = 4001;
  const INDEX_WAIT_S = 120;

  function chainName(id) { return CHAINS[id] || "chain " + id; }

  class Failure extends Error {}

  function sleep(ms) { return new Promise(function (done) { setTimeout(done, ms); }); }

  async function call(method, url, body) {
    const response = await fetch(url, {
      method: method,
      headers: body ? { "Content-Type": "application/json", "Accept": "application/json" }
                    : { "Accept": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    });
    let data = null;
    try { data = await response.json(); } catch (_) { /* no JSON body */ }
    return { response: response, data: data };
  }

  function message(answer) {
    return (answer.data && answer.data.message) || "the service answered " + answer.response.status;
  }

  async function relay(body) {
    const answer = await call("POST", "/v1/relay/declarations?wait=0", body);
    const code = answer.response.status;
    if (code === 429) {
      throw new Failure("The relay's limit is reached (" + message(answer) + "). Nothing was " +
        "declared. Try again later, or declare from the command line below with --direct " +
        "(you pay the gas).");
    }
    if (code === 409) {
      throw new Failure("This declaration's nonce was used in the meantime; start again to " +
        "prepare a fresh one.");
    }
    if (code !== 200 && code !== 202) {
      throw new Failure("The relay refused the declaration: " + message(answer));
    }
    let job = answer.data;
    while (job.state === "pending") {
      const next = await call("GET", "/v1/relay/jobs/" + encodeURIComponent(job.job) + "?wait=10");
      if (!next.response.ok) throw new Failure("Lost the relay job: " + message(next));
      job = next.data;
    }
    if (job.state === "failed") throw new Failure("The chain refused the declaration: " + job.error);
    return job.result;
  }

  async function indexed(isccId) {
    for (let waited = 0; waited < INDEX_WAIT_S; waited++) {
      const answer = await call("GET", "/v1/resolve?q=" + encodeURIComponent(isccId));
      if (answer.response.ok) return;
      if (answer.response.status !== 404) throw new Failure("Could not look it up: " + message(answer));
      await sleep(1000);
    }
    throw new Failure("Declared as " + isccId + ", but this service has not indexed it yet; " +
      "look it up again in a minute.");
  }

  async function declare(section) {
    const ethereum = window.ethereum;
    const status = section.querySelector("#declare-status");
    const error = section.querySelector("#declare-error");
    const button = section.querySelector("#declare-wallet");
    const wanted = Number(section.dataset.chainId);
    const say = function (text) { status.textContent = text; };
    error.hidden = true;
    button.disabled = true;
    try {
      say("Asking your wallet for an account…");
      const accounts = await ethereum.request({ method: "eth_requestAccounts" });
      if (!accounts || !accounts.length) throw new Failure("Your wallet shared no account.");
      const account = accounts[0];
      let chain = parseInt(await ethereum.request({ method: "eth_chainId" }), 16);
      if (chain !== wanted) {
        say("Asking your wallet to switch to " + chainName(wanted) + "…");
        try {
          await ethereum.request({
            method: "wallet_switchEthereumChain",
            params: [{ chainId: "0x" + wanted.toString(16) }],
          });
          chain = parseInt(await ethereum.request({ method: "eth_chainId" }), 16);
        } catch (_) { /* refused or unknown to the wallet: said below */ }
        if (chain !== wanted) {
          throw new Failure("Your wallet is on " + chainName(chain) + ", but this registry is on " +
            chainName(wanted) + " (chain id " + wanted + "). Switch your wallet to " +
            chainName(wanted) + " and try again.");
        }
      }
      say("Preparing the declaration…");
      const prepared = await call("POST", "/v1/declarations/prepare", {
        iscc_code: section.dataset.iscc,
        datahash: section.dataset.datahash,
        metahash: section.dataset.metahash || null,
        gateway: "",
        declarer: account,
      });
      if (!prepared.response.ok) throw new Failure("Could not prepare it: " + message(prepared));
      say("Sign the declaration in your wallet…");
      const signature = await ethereum.request({
        method: "eth_signTypedData_v4",
        params: [account, JSON.stringify(prepared.data.typed_data)],
      });
      say("Sending it through the relay and waiting for the chain…");
      const result = await relay(Object.assign({}, prepared.data.relay, { signature: signature }));
      say("Declared as " + result.iscc_id + " in block " + result.block_number +
          ". Waiting for this service to index it…");
      await indexed(result.iscc_id);
      status.textContent = "";
      const link = document.createElement("a");
      link.href = "/declaration/" + result.iscc_id;
      link.textContent = result.iscc_id;
      status.append("Declared and indexed as ", link, ".");
      button.hidden = true;
      section.querySelector("#declare-cli").hidden = true;
    } catch (exc) {
      say("");
      if (exc && exc.code === USER_REJECTED) {
        error.textContent = "You declined in your wallet; nothing was declared.";
      } else if (exc instanceof Failure) {
        error.textContent = exc.message;
      } else {
        error.textContent = "The wallet reported a problem: " + ((exc && exc.message) || exc);
      }
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  function activate(root) {
    const section = root.querySelector("#declare");
    if (!section || !section.dataset.chainId) return;
    const button = section.querySelector("#declare-wallet");
    if (window.ethereum && typeof window.ethereum.request === "function") {
      button.closest(".wallet-only").hidden = false;
      section.querySelector("#no-wallet").textContent =
        "Or declare it from the command line with your key:";
      button.addEventListener("click", function () { declare(section); });
    }
  }

  document.addEventListener("registry:content", function (event) { activate(event.detail); });
  activate(document);
})();
