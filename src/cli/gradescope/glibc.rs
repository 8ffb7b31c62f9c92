//! The newest glibc a Linux binary needs, read from its ELF version needs (`GLIBC_2.34` and the like), as
//! auditwheel reads a wheel's for manylinux: a binary runs on an image whose glibc is at least that new.

use std::fmt;
use std::str::FromStr;

use object::Endianness;
use object::elf::{EM_X86_64, FileHeader64};
use object::read::elf::FileHeader as _;

/// A glibc version, `2.35`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Glibc {
    pub major: u32,
    pub minor: u32,
}

impl FromStr for Glibc {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parse = || {
            let mut parts = text.split('.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
            // GLIBC_2.2.5 names a patch release; it orders with its minor version
            parts.all(|p| p.parse::<u32>().is_ok()).then_some(Glibc { major, minor })
        };
        parse().ok_or_else(|| format!("`{text}` is not a glibc version (like 2.35)"))
    }
}

impl fmt::Display for Glibc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What a binary needs from the image it runs on.
#[derive(Debug, PartialEq, Eq)]
pub enum Needs {
    /// Linked statically (or against no versioned glibc symbol): any x86-64 Linux runs it.
    Nothing,
    /// The newest `GLIBC_` version among its version needs.
    Glibc(Glibc),
}

/// Reads an x86-64 ELF executable's glibc needs. The error says why the file cannot ship to an x86-64 image.
pub fn needs(elf: &[u8]) -> Result<Needs, String> {
    let header = FileHeader64::<Endianness>::parse(elf).map_err(|_| "not a 64-bit ELF executable".to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    if header.e_machine(endian) != EM_X86_64 {
        return Err(format!("built for ELF machine {}, not x86-64", header.e_machine(endian)));
    }
    let broken = |e: object::read::Error| format!("unreadable ELF version needs: {e}");
    let sections = header.sections(endian, elf).map_err(broken)?;
    let Some((mut files, link)) = sections.gnu_verneed(endian, elf).map_err(broken)? else {
        return Ok(Needs::Nothing);
    };
    let strings = sections.strings(endian, elf, link).map_err(broken)?;
    let mut newest = None;
    while let Some((_, mut versions)) = files.next().map_err(broken)? {
        while let Some(version) = versions.next().map_err(broken)? {
            let name = version.name(endian, strings).map_err(broken)?;
            let Some(number) = name.strip_prefix(b"GLIBC_") else { continue };
            // GLIBC_PRIVATE and the like are no release
            if let Ok(glibc) = std::str::from_utf8(number).unwrap_or_default().parse::<Glibc>() {
                newest = newest.max(Some(glibc));
            }
        }
    }
    Ok(newest.map_or(Needs::Nothing, Needs::Glibc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order_like_glibc_releases() {
        let v = |s: &str| s.parse::<Glibc>().unwrap();
        assert!(v("2.2.5") < v("2.17"), "2.2.5 is older than 2.17");
        assert!(v("2.34") < v("2.35"));
        assert_eq!(v("2.35").to_string(), "2.35");
        assert!("2.x".parse::<Glibc>().is_err(), "2.x is no version");
        assert!("PRIVATE".parse::<Glibc>().is_err());
    }

    #[test]
    fn this_test_binary_needs_a_glibc_no_newer_than_the_one_it_runs_on() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let Needs::Glibc(needed) = needs(&me).unwrap() else { panic!("a cargo test binary links glibc") };
        // SAFETY: gnu_get_libc_version returns a static string
        let running: Glibc =
            unsafe { std::ffi::CStr::from_ptr(gnu_get_libc_version()) }.to_str().unwrap().parse().unwrap();
        assert!(needed <= running, "needs {needed}, runs on {running}");
        assert!(needed >= "2.2.5".parse().unwrap(), "every x86-64 glibc binary needs at least 2.2.5, read {needed}");
    }

    unsafe extern "C" {
        fn gnu_get_libc_version() -> *const std::ffi::c_char;
    }

    #[test]
    fn text_is_no_executable() {
        assert_eq!(needs(b"#!/bin/sh\necho hi\n"), Err("not a 64-bit ELF executable".into()));
    }
}
