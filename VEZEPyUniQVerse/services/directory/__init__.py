"""The service directory ("Helm"): every VEZE service and whether it answers right now."""
