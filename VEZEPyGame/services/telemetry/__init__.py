"""Client telemetry: bounded, validated batches stored durably, and fair-play rules over them."""
