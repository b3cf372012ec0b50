"""HTTP adapters: webhook receiver, admin API, health and metrics."""
