//! The dmz: a 645-byte static x86_64 program that only execve's the
//! container's process. The runtime runs it from a sealed memfd
//! (`execveat(fd, "", …, AT_EMPTY_PATH)`) as its very last step, so that
//! when the kernel resolves the user's program, and any `#!` interpreter
//! such as `/proc/self/exe` (CVE-2019-5736), `/proc/self/exe` is that
//! sealed memfd, never the host's runtime binary. That lets the container's
//! init be a plain fork of the runtime instead of a second execution of the
//! 6 MB binary (see [`super::spawn`]).
//!
//! Calling convention (argv[0] carries the path so the program keeps the
//! argv[0] it was given, as with a direct execve):
//!
//! ```text
//! dmz PATH ARGV0 [ARG]...   →   execve(PATH, [ARGV0, ARG...], envp)
//! ```
//!
//! On failure it writes `berth-runtime: exec PATH: REASON` to stderr and
//! exits 127 for ENOENT, 126 otherwise (the shell's convention, which
//! podman and Docker follow). Fewer than two arguments: a usage line, 127.
//! That also ends a `#!/proc/self/exe` loop: the kernel runs the dmz with
//! `[/proc/self/exe, SCRIPT, …]`, which executes the dmz again with one
//! argument fewer each round until the usage error.
//!
//! Why hand-assembled bytes and not a built program: a second binary would
//! need a C or asm toolchain, a linker script and a build.rs producing an
//! artifact for every target (or a checked-in blob nobody can review);
//! Rust's own `no_std` binary would still pull in a linker and be ten
//! times the size. The program is 85 instructions with no libc, no
//! relocations and no data section; the listing below is its source
//! (GNU as, Intel syntax, assembled and checked with objdump) and the unit
//! tests run it.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Machine code, position independent (rip-relative data only). The strings
/// in [`STRINGS`] follow it directly: the `lea …[rip+…]` offsets assume so.
#[rustfmt::skip]
const CODE: [u8; 0x154] = [
    // _start: the kernel left argc at [rsp], argv at rsp+8, envp after argv's NULL.
    0x48, 0x8b, 0x0c, 0x24,                         // 000 mov  rcx, [rsp]            ; argc
    0x4c, 0x8b, 0x7c, 0x24, 0x08,                   // 004 mov  r15, [rsp+8]          ; PATH = argv[0]
    0x48, 0x83, 0xf9, 0x02,                         // 009 cmp  rcx, 2
    0x0f, 0x82, 0x1d, 0x01, 0x00, 0x00,             // 00d jb   usage (130)
    0x4c, 0x89, 0xff,                               // 013 mov  rdi, r15              ; filename
    0x48, 0x8d, 0x74, 0x24, 0x10,                   // 016 lea  rsi, [rsp+16]         ; &argv[1]
    0x48, 0x8d, 0x54, 0xcc, 0x10,                   // 01b lea  rdx, [rsp+rcx*8+16]   ; envp = &argv[argc+1]
    0xb8, 0x3b, 0x00, 0x00, 0x00,                   // 020 mov  eax, 59               ; SYS_execve
    0x0f, 0x05,                                     // 025 syscall
    // Only a failed execve returns: eax = -errno.
    0xf7, 0xd8,                                     // 027 neg  eax                   ; errno
    0xbb, 0x7e, 0x00, 0x00, 0x00,                   // 029 mov  ebx, 126              ; exit status
    0x48, 0x81, 0xec, 0x80, 0x00, 0x00, 0x00,       // 02e sub  rsp, 128              ; iovecs + digit buffer
    0x83, 0xf8, 0x02,                               // 035 cmp  eax, 2                ; ENOENT
    0x75, 0x14,                                     // 038 jne  not_enoent (4e)
    0xbb, 0x7f, 0x00, 0x00, 0x00,                   // 03a mov  ebx, 127
    0x4c, 0x8d, 0x2d, 0x25, 0x01, 0x00, 0x00,       // 03f lea  r13, [rip+enoent]     ; reason
    0x41, 0xbe, 0x19, 0x00, 0x00, 0x00,             // 046 mov  r14d, 25              ; its length
    0xeb, 0x65,                                     // 04c jmp  report (b3)
    // not_enoent:
    0x83, 0xf8, 0x0d,                               // 04e cmp  eax, 13               ; EACCES
    0x75, 0x0f,                                     // 051 jne  not_eacces (62)
    0x4c, 0x8d, 0x2d, 0x2a, 0x01, 0x00, 0x00,       // 053 lea  r13, [rip+eacces]
    0x41, 0xbe, 0x11, 0x00, 0x00, 0x00,             // 05a mov  r14d, 17
    0xeb, 0x51,                                     // 060 jmp  report (b3)
    // not_eacces:
    0x83, 0xf8, 0x08,                               // 062 cmp  eax, 8                ; ENOEXEC
    0x75, 0x0f,                                     // 065 jne  digits (76)
    0x4c, 0x8d, 0x2d, 0x27, 0x01, 0x00, 0x00,       // 067 lea  r13, [rip+enoexec]
    0x41, 0xbe, 0x11, 0x00, 0x00, 0x00,             // 06e mov  r14d, 17
    0xeb, 0x3d,                                     // 074 jmp  report (b3)
    // digits: reason = "errno N", written backwards ending at rsp+128.
    0x4c, 0x8d, 0xac, 0x24, 0x80, 0x00, 0x00, 0x00, // 076 lea  r13, [rsp+128]
    0xb9, 0x0a, 0x00, 0x00, 0x00,                   // 07e mov  ecx, 10
    // digit:
    0x31, 0xd2,                                     // 083 xor  edx, edx
    0xf7, 0xf1,                                     // 085 div  ecx                   ; eax /= 10, edx = rest
    0x80, 0xc2, 0x30,                               // 087 add  dl, '0'
    0x49, 0xff, 0xcd,                               // 08a dec  r13
    0x41, 0x88, 0x55, 0x00,                         // 08d mov  [r13], dl
    0x85, 0xc0,                                     // 091 test eax, eax
    0x75, 0xee,                                     // 093 jnz  digit (83)
    0x49, 0x83, 0xed, 0x06,                         // 095 sub  r13, 6
    0x41, 0xc7, 0x45, 0x00, 0x65, 0x72, 0x72, 0x6e, // 099 mov  dword [r13], "errn"
    0x66, 0x41, 0xc7, 0x45, 0x04, 0x6f, 0x20,       // 0a1 mov  word [r13+4], "o "
    0x4c, 0x8d, 0xb4, 0x24, 0x80, 0x00, 0x00, 0x00, // 0a8 lea  r14, [rsp+128]
    0x4d, 0x29, 0xee,                               // 0b0 sub  r14, r13              ; length
    // report: rcx = strlen(PATH)
    0x31, 0xc9,                                     // 0b3 xor  ecx, ecx
    0x41, 0x80, 0x3c, 0x0f, 0x00,                   // 0b5 cmp  byte [r15+rcx], 0
    0x74, 0x05,                                     // 0ba je   strlen_done (c1)
    0x48, 0xff, 0xc1,                               // 0bc inc  rcx
    0xeb, 0xf4,                                     // 0bf jmp  strlen (b5)
    // strlen_done: iov[5] = { prefix, PATH, ": ", reason, "\n" } at rsp.
    0x48, 0x8d, 0x05, 0x8c, 0x00, 0x00, 0x00,       // 0c1 lea  rax, [rip+prefix]
    0x48, 0x89, 0x04, 0x24,                         // 0c8 mov  [rsp], rax
    0x48, 0xc7, 0x44, 0x24, 0x08, 0x14, 0x00, 0x00, 0x00, // 0cc mov qword [rsp+8], 20
    0x4c, 0x89, 0x7c, 0x24, 0x10,                   // 0d5 mov  [rsp+16], r15
    0x48, 0x89, 0x4c, 0x24, 0x18,                   // 0da mov  [rsp+24], rcx
    0x48, 0x8d, 0x05, 0x82, 0x00, 0x00, 0x00,       // 0df lea  rax, [rip+sep]
    0x48, 0x89, 0x44, 0x24, 0x20,                   // 0e6 mov  [rsp+32], rax
    0x48, 0xc7, 0x44, 0x24, 0x28, 0x02, 0x00, 0x00, 0x00, // 0eb mov qword [rsp+40], 2
    0x4c, 0x89, 0x6c, 0x24, 0x30,                   // 0f4 mov  [rsp+48], r13
    0x4c, 0x89, 0x74, 0x24, 0x38,                   // 0f9 mov  [rsp+56], r14
    0x48, 0x8d, 0x05, 0x65, 0x00, 0x00, 0x00,       // 0fe lea  rax, [rip+newline]
    0x48, 0x89, 0x44, 0x24, 0x40,                   // 105 mov  [rsp+64], rax
    0x48, 0xc7, 0x44, 0x24, 0x48, 0x01, 0x00, 0x00, 0x00, // 10a mov qword [rsp+72], 1
    0xbf, 0x02, 0x00, 0x00, 0x00,                   // 113 mov  edi, 2                ; stderr
    0x48, 0x89, 0xe6,                               // 118 mov  rsi, rsp
    0xba, 0x05, 0x00, 0x00, 0x00,                   // 11b mov  edx, 5
    0xb8, 0x14, 0x00, 0x00, 0x00,                   // 120 mov  eax, 20               ; SYS_writev
    0x0f, 0x05,                                     // 125 syscall
    0x89, 0xdf,                                     // 127 mov  edi, ebx
    0xb8, 0xe7, 0x00, 0x00, 0x00,                   // 129 mov  eax, 231              ; SYS_exit_group
    0x0f, 0x05,                                     // 12e syscall
    // usage:
    0x48, 0x8d, 0x35, 0x6f, 0x00, 0x00, 0x00,       // 130 lea  rsi, [rip+usage_msg]
    0xba, 0x2f, 0x00, 0x00, 0x00,                   // 137 mov  edx, 47
    0xbf, 0x02, 0x00, 0x00, 0x00,                   // 13c mov  edi, 2
    0xb8, 0x01, 0x00, 0x00, 0x00,                   // 141 mov  eax, 1                ; SYS_write
    0x0f, 0x05,                                     // 146 syscall
    0xbf, 0x7f, 0x00, 0x00, 0x00,                   // 148 mov  edi, 127
    0xb8, 0xe7, 0x00, 0x00, 0x00,                   // 14d mov  eax, 231              ; SYS_exit_group
    0x0f, 0x05,                                     // 152 syscall
];

/// The data right after [`CODE`], at the offsets the code's `lea`s name
/// (relative to the start of CODE).
const STRINGS: [(usize, &[u8]); 7] = [
    (0x154, b"berth-runtime: exec "), // prefix, 20 bytes
    (0x168, b": "),                   // sep
    (0x16a, b"\n"),                   // newline
    (0x16b, b"no such file or directory"),
    (0x184, b"permission denied"),
    (0x195, b"exec format error"),
    (0x1a6, b"berth-runtime: dmz: usage: PATH ARGV0 [ARG]...\n"),
];

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
/// Where CODE starts in the file (and in memory: the one segment maps the
/// file from offset 0 at the load address).
const CODE_OFFSET: usize = EHDR_SIZE + 2 * PHDR_SIZE;
const DATA_END: usize = 0x1a6 + 47;
/// Size of the whole program.
pub const IMAGE_LEN: usize = CODE_OFFSET + DATA_END;

const fn put(img: &mut [u8; IMAGE_LEN], at: usize, bytes: &[u8]) {
    let mut i = 0;
    while i < bytes.len() {
        img[at + i] = bytes[i];
        i += 1;
    }
}

const fn put_le(img: &mut [u8; IMAGE_LEN], at: usize, value: u64, width: usize) {
    let mut i = 0;
    while i < width {
        img[at + i] = (value >> (8 * i)) as u8;
        i += 1;
    }
}

/// Emits the ELF file: header, a PT_LOAD of the whole file (read+execute)
/// and a PT_GNU_STACK (non-executable stack), then code and strings. An
/// ET_DYN without interpreter is loaded at a random base like a static PIE.
const fn build_image() -> [u8; IMAGE_LEN] {
    let mut img = [0u8; IMAGE_LEN];
    // e_ident: magic, ELFCLASS64, little endian, EV_CURRENT, System V ABI.
    put(&mut img, 0, b"\x7fELF\x02\x01\x01\x00");
    put_le(&mut img, 16, 3, 2); // e_type ET_DYN
    put_le(&mut img, 18, 0x3e, 2); // e_machine EM_X86_64
    put_le(&mut img, 20, 1, 4); // e_version
    put_le(&mut img, 24, CODE_OFFSET as u64, 8); // e_entry
    put_le(&mut img, 32, EHDR_SIZE as u64, 8); // e_phoff
    put_le(&mut img, 40, 0, 8); // e_shoff: no sections
    put_le(&mut img, 48, 0, 4); // e_flags
    put_le(&mut img, 52, EHDR_SIZE as u64, 2); // e_ehsize
    put_le(&mut img, 54, PHDR_SIZE as u64, 2); // e_phentsize
    put_le(&mut img, 56, 2, 2); // e_phnum
                                // e_shentsize, e_shnum, e_shstrndx: 0, there are no sections.

    let load = EHDR_SIZE;
    put_le(&mut img, load, 1, 4); // p_type PT_LOAD
    put_le(&mut img, load + 4, 0x5, 4); // p_flags PF_R | PF_X
    put_le(&mut img, load + 8, 0, 8); // p_offset
    put_le(&mut img, load + 16, 0, 8); // p_vaddr
    put_le(&mut img, load + 24, 0, 8); // p_paddr
    put_le(&mut img, load + 32, IMAGE_LEN as u64, 8); // p_filesz
    put_le(&mut img, load + 40, IMAGE_LEN as u64, 8); // p_memsz
    put_le(&mut img, load + 48, 0x1000, 8); // p_align

    let stack = EHDR_SIZE + PHDR_SIZE;
    put_le(&mut img, stack, 0x6474_e551, 4); // p_type PT_GNU_STACK
    put_le(&mut img, stack + 4, 0x6, 4); // p_flags PF_R | PF_W
    put_le(&mut img, stack + 48, 16, 8); // p_align

    put(&mut img, CODE_OFFSET, &CODE);
    let mut i = 0;
    while i < STRINGS.len() {
        put(&mut img, CODE_OFFSET + STRINGS[i].0, STRINGS[i].1);
        i += 1;
    }
    img
}

/// The program's bytes.
pub static IMAGE: [u8; IMAGE_LEN] = build_image();

/// The dmz loaded into a sealed, executable memfd, made once per runtime
/// invocation before the clone (a few µs: memfd_create, write, fcntl).
pub struct Dmz {
    fd: OwnedFd,
}

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

impl Dmz {
    /// Loads the dmz. Fails on other architectures than x86_64 and where
    /// executable memfds are refused (`vm.memfd_noexec = 2`); callers then
    /// re-execute the runtime from its sealed view instead.
    pub fn load() -> std::io::Result<Dmz> {
        if !cfg!(target_arch = "x86_64") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "the dmz exists for x86_64 only",
            ));
        }
        // MFD_EXEC (Linux 6.3) asks for an executable memfd where
        // vm.memfd_noexec = 1 would default to a non-executable one.
        const MFD_EXEC: libc::c_uint = 0x0010;
        let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        let fd = match memfd_create(base | MFD_EXEC) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => memfd_create(base)?,
            other => other?,
        };
        let mut written = 0;
        while written < IMAGE.len() {
            // SAFETY: writes from a valid slice to our own fd.
            let n = unsafe {
                libc::write(
                    fd.as_raw_fd(),
                    IMAGE[written..].as_ptr().cast(),
                    IMAGE.len() - written,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(e);
            }
            written += n as usize;
        }
        // SAFETY: fcntl on our own fd with an integer argument.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Dmz { fd })
    }

    pub fn raw_fd(&self) -> libc::c_int {
        self.fd.as_raw_fd()
    }

    /// Executes `path` with `args` (args[0] is the program's argv[0]) and
    /// `env` through the dmz. Returns only on failure, with the reason.
    ///
    /// execveat(AT_EMPTY_PATH) needs no /proc; a seccomp profile that
    /// refuses execveat (but allows execve) gets execve of
    /// /proc/self/fd/N: the same sealed memfd either way, never a direct
    /// execve of the program, which would resolve `#!/proc/self/exe` to the
    /// runtime.
    pub fn exec(&self, path: &CStr, args: &[CString], env: &[CString]) -> std::io::Error {
        let mut argv: Vec<*const libc::c_char> = Vec::with_capacity(args.len() + 2);
        argv.push(path.as_ptr());
        argv.extend(args.iter().map(|a| a.as_ptr()));
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        // SAFETY: argv and envp are NULL-terminated arrays of pointers into
        // CStrings that outlive the call; the fd is our own.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                self.fd.as_raw_fd(),
                c"".as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
        }
        let first = std::io::Error::last_os_error();
        if !matches!(first.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) {
            return first;
        }
        let Ok(proc_path) = CString::new(format!("/proc/self/fd/{}", self.fd.as_raw_fd())) else {
            return first;
        };
        // SAFETY: as above, with a NUL-terminated path.
        unsafe { libc::execve(proc_path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        std::io::Error::last_os_error()
    }
}

fn memfd_create(flags: libc::c_uint) -> std::io::Result<OwnedFd> {
    // SAFETY: the name is a valid NUL-terminated string; memfd_create
    // returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"berth-dmz".as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the fd was just created and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Output};

    /// Runs the dmz from its memfd through /proc/self/fd (the memfd is
    /// close-on-exec, which only matters once the dmz runs).
    fn run_dmz(dmz: &Dmz, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = format!("/proc/self/fd/{}", dmz.raw_fd());
        let mut cmd = Command::new(&path);
        if let Some((first, rest)) = args.split_first() {
            cmd.arg0(first).args(rest);
        } else {
            cmd.arg0(&path);
        }
        cmd.env_clear().envs(env.iter().copied());
        cmd.output().expect("run the dmz")
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn layout_matches_the_listing() {
        // Each string ends where the next begins, and the last one fills
        // the image exactly.
        for pair in STRINGS.windows(2) {
            assert_eq!(pair[0].0 + pair[0].1.len(), pair[1].0, "{:?}", pair[1].1);
        }
        let (last_at, last) = STRINGS[STRINGS.len() - 1];
        assert_eq!(last_at + last.len(), DATA_END);
        assert_eq!(STRINGS[0].0, CODE.len());
        assert_eq!(IMAGE.len(), 645);
        assert_eq!(&IMAGE[..4], b"\x7fELF");
    }

    #[test]
    fn memfd_is_sealed() {
        let dmz = Dmz::load().expect("load the dmz");
        let fd = dmz.raw_fd();
        // SAFETY: fcntl on our own fd.
        let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
        assert_eq!(seals & SEALS, SEALS);
        // SAFETY: write/ftruncate on our own fd from a valid buffer.
        let (w, t) = unsafe {
            (
                libc::write(fd, b"x".as_ptr().cast(), 1),
                libc::ftruncate(fd, 0),
            )
        };
        assert_eq!(
            (w, t),
            (-1, -1),
            "sealed memfd accepted a write or truncate"
        );
        let st = std::fs::File::open(format!("/proc/self/fd/{fd}"))
            .expect("reopen the memfd")
            .metadata()
            .expect("stat");
        assert_eq!(st.len(), IMAGE_LEN as u64);
        // Reopened writable through /proc, the seal still holds.
        let reopened = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{fd}"));
        if let Ok(mut f) = reopened {
            use std::io::Write;
            let e = f
                .write_all(b"pwned")
                .expect_err("write through a reopened memfd");
            assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        }
        let st = std::fs::metadata(format!("/proc/self/fd/{fd}")).expect("stat");
        assert_eq!(st.len(), IMAGE_LEN as u64);
    }

    #[test]
    fn passes_argv_and_envp_through() {
        let dmz = Dmz::load().expect("load the dmz");
        // argv[0] is the program's own, not the path it was found at.
        let out = run_dmz(&dmz, &["/bin/cat", "my-argv0", "/proc/self/cmdline"], &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(out.stdout, b"my-argv0\0/proc/self/cmdline\0");

        let out = run_dmz(
            &dmz,
            &["/usr/bin/env", "env"],
            &[("FOO", "bar baz"), ("EMPTY", "")],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let mut lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
        lines.sort();
        assert_eq!(lines, ["EMPTY=", "FOO=bar baz"]);

        // The exit status is the program's.
        let out = run_dmz(&dmz, &["/bin/sh", "sh", "-c", "exit 42"], &[]);
        assert_eq!(out.status.code(), Some(42));
    }

    #[test]
    fn reports_exec_failures_with_shell_exit_codes() {
        let dmz = Dmz::load().expect("load the dmz");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();

        let missing = path("missing");
        let out = run_dmz(&dmz, &[&missing, "x"], &[]);
        assert_eq!(out.status.code(), Some(127));
        assert_eq!(
            text(&out.stderr),
            format!("berth-runtime: exec {missing}: no such file or directory\n")
        );

        let plain = path("plain");
        std::fs::write(&plain, "not a program").expect("write");
        let out = run_dmz(&dmz, &[&plain, "x"], &[]);
        assert_eq!(out.status.code(), Some(126));
        assert_eq!(
            text(&out.stderr),
            format!("berth-runtime: exec {plain}: permission denied\n")
        );

        let garbage = path("garbage");
        std::fs::write(&garbage, [0u8; 64]).expect("write");
        std::fs::set_permissions(
            &garbage,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let out = run_dmz(&dmz, &[&garbage, "x"], &[]);
        assert_eq!(out.status.code(), Some(126));
        assert_eq!(
            text(&out.stderr),
            format!("berth-runtime: exec {garbage}: exec format error\n")
        );

        // Other errors by number: ELOOP (40).
        let looping = path("loop");
        std::os::unix::fs::symlink(&looping, &looping).expect("symlink");
        let out = run_dmz(&dmz, &[&looping, "x"], &[]);
        assert_eq!(out.status.code(), Some(126));
        assert_eq!(
            text(&out.stderr),
            format!("berth-runtime: exec {looping}: errno 40\n")
        );

        // Without a program to run.
        let out = run_dmz(&dmz, &[], &[]);
        assert_eq!(out.status.code(), Some(127));
        assert_eq!(
            text(&out.stderr),
            "berth-runtime: dmz: usage: PATH ARGV0 [ARG]...\n"
        );
    }

    /// `#!/proc/self/exe` resolves to the dmz itself, never to the binary
    /// that started it, and the loop ends with the usage error.
    #[test]
    fn proc_self_exe_script_loops_back_into_the_dmz_and_ends() {
        let dmz = Dmz::load().expect("load the dmz");
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("evil");
        std::fs::write(&script, "#!/proc/self/exe\n").expect("write");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let s = script.to_string_lossy().into_owned();
        let out = run_dmz(&dmz, &[&s, &s, "a"], &[]);
        assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("berth-runtime: dmz: usage"),
            "{}",
            text(&out.stderr)
        );
    }
}
