"""What users ask of Applications: create, update, delete, sync, rollback, terminate, manifests, the demo."""
