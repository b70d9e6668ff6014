//! syscall helpers
