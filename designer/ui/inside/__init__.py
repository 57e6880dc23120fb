"""Inside the network while it trains: the Inside panel and the gradient overlay (issue 16)."""
