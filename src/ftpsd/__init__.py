"""ftpsd: a hardened, reloadable FTPS daemon built on pyftpdlib."""

__version__ = "0.1.0"
