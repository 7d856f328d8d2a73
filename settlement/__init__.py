"""On-chain settlement of the venue's fills: the SettlementVault contract, netting, Merkle
commitments, the web3 client and the exactly-once batch job (see settlement/README.md)."""
