#!/bin/sh
# Installs caresync for systemd: the binary, the unit, a configuration to edit, the credentials directory
# and the operator documentation. Run as root from the repository (make install does), or with DESTDIR to
# stage a package. Nothing is overwritten that an operator edits: an existing caresync.yaml is kept.
#
#   Deploy/install.sh PATH-TO-BUILT-caresync
#
# Environment: DESTDIR (staging root, default empty), PREFIX (default /usr/local), SYSCONFDIR (default
# /etc), UNITDIR (default /etc/systemd/system).
#
# No user is created: the unit runs with DynamicUser=yes, and systemd creates the state directory
# (/var/lib/private/caresync, reached through /var/lib/caresync) on first start.
set -eu

binary=${1:?usage: Deploy/install.sh PATH-TO-BUILT-caresync}
repository=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-/etc/systemd/system}

[ -x "$binary" ] || { echo "install.sh: $binary is not an executable (build it: swift build -c release)" >&2; exit 2; }

say() { printf '%s\n' "$*"; }

install -d -m 0755 "$DESTDIR$PREFIX/bin"
install -m 0755 "$binary" "$DESTDIR$PREFIX/bin/caresync"
say "installed $PREFIX/bin/caresync"

# The unit names the default paths; follow PREFIX and SYSCONFDIR when they differ.
unit=$(mktemp)
trap 'rm -f "$unit"' EXIT
sed -e "s|/usr/local/bin/caresync|$PREFIX/bin/caresync|g" \
    -e "s|/usr/local/share/doc/caresync|$PREFIX/share/doc/caresync|g" \
    -e "s|/etc/caresync|$SYSCONFDIR/caresync|g" \
    "$repository/Deploy/caresync.service" > "$unit"
install -d -m 0755 "$DESTDIR$UNITDIR"
install -m 0644 "$unit" "$DESTDIR$UNITDIR/caresync.service"
say "installed $UNITDIR/caresync.service"

install -d -m 0755 "$DESTDIR$SYSCONFDIR/caresync"
install -d -m 0700 "$DESTDIR$SYSCONFDIR/caresync/credentials"
if [ -e "$DESTDIR$SYSCONFDIR/caresync/caresync.yaml" ]; then
    say "kept the existing $SYSCONFDIR/caresync/caresync.yaml"
else
    install -m 0644 "$repository/Deploy/caresync.example.yaml" "$DESTDIR$SYSCONFDIR/caresync/caresync.yaml"
    say "installed $SYSCONFDIR/caresync/caresync.yaml (the example: edit it)"
fi

install -d -m 0755 "$DESTDIR$PREFIX/share/doc/caresync" "$DESTDIR$PREFIX/share/caresync"
install -m 0644 "$repository/docs/operations.md" "$DESTDIR$PREFIX/share/doc/caresync/operations.md"
install -m 0644 "$repository/Deploy/caresync.example.yaml" "$DESTDIR$PREFIX/share/doc/caresync/caresync.example.yaml"
install -m 0644 "$repository/Schemas/config.schema.json" "$DESTDIR$PREFIX/share/caresync/config.schema.json"

if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
    say "systemd reloaded"
fi

cat <<NEXT
Next:
  1. put secrets in $SYSCONFDIR/caresync/credentials (mode 0600, owner root) and list each in the unit's
     LoadCredential= lines (systemctl edit caresync), named credential:NAME in caresync.yaml;
  2. edit $SYSCONFDIR/caresync/caresync.yaml and check it:
       sudo env CREDENTIALS_DIRECTORY=$SYSCONFDIR/caresync/credentials $PREFIX/bin/caresync check-config --config $SYSCONFDIR/caresync/caresync.yaml
  3. systemctl enable --now caresync; journalctl -u caresync -f
NEXT
