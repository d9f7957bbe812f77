"""Which build this is. scripts/build_release.py overwrites this file in the zip it makes:
"platform" (extensions-platform rules: OpenCV bundled, no environment creator) or "full" (adds it).
A run from the source tree, and the zip the tests build from it, are "full". Read by deps.build_flavour()."""

FLAVOUR = "full"
