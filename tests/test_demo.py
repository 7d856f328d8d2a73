"""The in-process walk-through (python -m demo walkthrough) runs and tells the truth."""

import subprocess
import sys


def test_demo_runs_end_to_end():
    out = subprocess.run([sys.executable, "-m", "demo", "walkthrough"], capture_output=True, text=True,
                         timeout=600, check=True).stdout
    assert "price outside the static band" in out          # the 100x ask is refused
    assert "price band: could not trade inside the band" in out
    assert "self-trade prevention" in out
    assert "margin calls: ['tsla-holder']" in out            # TSLA.M fell: under maintenance
    assert "LIQUIDATING tsla-holder" in out
    assert "initial $0.00, maintenance $0.00; positions: none" in out   # shorts bought back
    assert "margin calls: []" in out
    assert "hour 6: BTC $94,000" in out and "tsla-holder receives" in out   # perpetual funding, long to short
    assert "left in the funding pool by rounding: 1 unit(s)" in out
    assert "proved against batch 1's root on chain: True" in out
    assert "12 of 12 (account, token) balances match" in out
    assert "running the job again settles nothing: None" in out
    assert "45.000 shares, 45.1800 tokens after the rebase; the vault holds exactly the shares it owes: True" in out
    assert "2 locked by its covered calls" in out                # part 4: covered calls, expiry, settlement
    assert "an order at 08:00 UTC: option series has expired" in out
    assert "tsla-holder pays 9.80 USDC" in out and "call-buyer receives 9.80 USDC" in out
    assert "8 of 8 on-chain balances equal the engine's" in out
    assert "watchtower: 1 of 1 batches recomputed" in out
