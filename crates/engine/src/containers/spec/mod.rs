//! Docker's container model → the OCI runtime spec a container runs with.
