"""jitbt's runtime: ELF loader, guest memory, native dispatcher, Linux syscall layer and CLI."""
