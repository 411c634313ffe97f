"""Field formats on top of the loader: gateway SQLite, MTConnect, device provisioning."""
