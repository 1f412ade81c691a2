#!/usr/bin/env bash
# dns-01 hook for ftps_pki's acme mode: publish or remove an ACME TXT record with RFC 2136
# dynamic updates (nsupdate, Debian package bind9-dnsutils), on the controller.
#   acme-dns01-nsupdate.sh add    _acme-challenge.ftp.example.org. <value>
#   acme-dns01-nsupdate.sh remove _acme-challenge.ftp.example.org. <value>
# Set ftps_pki_acme_dns_hook to this file's path. Configuration from the environment:
#   NSUPDATE_SERVER   the primary server that accepts updates (required)
#   NSUPDATE_PORT     its port (default 53)
#   NSUPDATE_KEYFILE  TSIG key file for `nsupdate -k` (recommended; keep it 0600)
#   NSUPDATE_ZONE     the zone to update (default: let nsupdate find it)
#   NSUPDATE_TTL      TTL of the record (default 60)
set -euo pipefail
action=${1:?add or remove} name=${2:?record name} value=${3:?TXT value}
: "${NSUPDATE_SERVER:?set NSUPDATE_SERVER to the server that accepts dynamic updates}"
args=()
[[ -n ${NSUPDATE_KEYFILE:-} ]] && args+=(-k "$NSUPDATE_KEYFILE")
case $action in
  add) op="update add $name ${NSUPDATE_TTL:-60} IN TXT \"$value\"" ;;
  remove) op="update delete $name IN TXT \"$value\"" ;;
  *) echo "usage: $0 add|remove NAME VALUE" >&2; exit 2 ;;
esac
{
  echo "server $NSUPDATE_SERVER ${NSUPDATE_PORT:-53}"
  [[ -n ${NSUPDATE_ZONE:-} ]] && echo "zone $NSUPDATE_ZONE"
  echo "$op"
  echo send
} | nsupdate "${args[@]}"
