"""The cosmetics store: catalogue, purchases completed by the provider's webhook, inventory."""
