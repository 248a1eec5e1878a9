"""Prints the directory that this interpreter imports packages from for an install prefix.

Debian's interpreter searches <prefix>/local/lib/python3.X/dist-packages
(scheme posix_local, base /usr), that is /usr/local/lib/python3.X/dist-packages
for the prefix /usr/local. Other prefixes get the standard posix_prefix layout.
"""
import os
import sys
import sysconfig

prefix = os.path.normpath(sys.argv[1])
if "posix_local" in sysconfig.get_scheme_names() and prefix == "/usr/local":
    path = sysconfig.get_path("platlib", "posix_local", vars={"base": "/usr", "platbase": "/usr"})
else:
    path = sysconfig.get_path("platlib", "posix_prefix", vars={"base": prefix, "platbase": prefix})
if path not in sys.path:
    print(f"note: {path} is not on {sys.executable}'s sys.path", file=sys.stderr)
print(path)
