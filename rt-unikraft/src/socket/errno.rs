//! The socket ops' error: a POSIX error number, typed so that an op can only fail with
//! one of the numbers below and no plain integer passes for one. The C edge
//! ([`super::entry`]) is the only place that turns it into the `-errno` posix-socket
//! expects ([`Errno::negated`]); `SO_ERROR` reports it positive ([`Errno::raw`]).

use core::fmt;

/// A POSIX error number (the values are musl's, shared by Unikraft and the `libc` crate).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(i32);

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "`.")]
                pub const $name: Errno = Errno(libc::$name);
            )*

            /// The symbolic name, for messages and `Debug`.
            pub fn name(self) -> &'static str {
                match self.0 {
                    $(libc::$name => stringify!($name),)*
                    _ => "E?",
                }
            }
        }
    };
}

errnos!(
    EADDRINUSE,
    EADDRNOTAVAIL,
    EAFNOSUPPORT,
    EAGAIN,
    EALREADY,
    EBADF,
    ECONNREFUSED,
    ECONNRESET,
    EDESTADDRREQ,
    EDOM,
    EFAULT,
    EINPROGRESS,
    EINVAL,
    EISCONN,
    EMSGSIZE,
    ENETDOWN,
    ENETUNREACH,
    ENOPROTOOPT,
    ENOTCONN,
    ENOTTY,
    EOPNOTSUPP,
    EPIPE,
    EPROTONOSUPPORT,
    ETIMEDOUT,
);

impl Errno {
    /// The number, positive (as `SO_ERROR` and `errno` hold it).
    pub fn raw(self) -> i32 {
        self.0
    }

    /// The number negated, as posix-socket's driver functions return errors.
    pub fn negated(self) -> i32 {
        -self.0
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Errno;

    #[test]
    fn names_and_signs_follow_the_libc_values() {
        assert_eq!(Errno::EAGAIN.raw(), libc::EAGAIN);
        assert_eq!(Errno::EAGAIN.negated(), -libc::EAGAIN);
        assert_eq!(format!("{:?}", Errno::ECONNRESET), "ECONNRESET");
        assert_ne!(Errno::EAGAIN, Errno::EINPROGRESS);
    }
}
