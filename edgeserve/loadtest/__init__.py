"""Reading k6 results: summaries and latency plots."""
