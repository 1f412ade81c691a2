#!/usr/bin/env bash
# A stand-in for a public CA, entirely outside the kit (plain openssl on the controller):
#   public_ca.sh init DIR                  root + issuing intermediate in DIR (once)
#   public_ca.sh sign DIR CSR OUT          sign CSR (its SANs copied) -> OUT/cert.pem, OUT/chain.pem
#   public_ca.sh foreign DIR NAME OUT      a certificate for NAME on a key the host never saw
set -euo pipefail
cmd=$1 dir=$2
leaf_ext() {
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n'
}
case $cmd in
  init)
    mkdir -p "$dir" && cd "$dir"
    [[ -f int.pem ]] && exit 0
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key -out root.pem \
      -days 365 -subj "/O=Test Public CA/CN=Test Public Root" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout int.key -out int.csr \
      -subj "/O=Test Public CA/CN=Test Issuing CA" 2>/dev/null
    openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -set_serial "0x$(openssl rand -hex 16)" \
      -days 365 -out int.pem \
      -extfile <(printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n') 2>/dev/null
    ;;
  sign)
    csr=$3 out=$4
    mkdir -p "$out"
    openssl x509 -req -in "$csr" -CA "$dir/int.pem" -CAkey "$dir/int.key" -set_serial "0x$(openssl rand -hex 16)" \
      -days 60 -copy_extensions copy -extfile <(leaf_ext) -out "$out/cert.pem" 2>/dev/null
    cat "$dir/int.pem" "$dir/root.pem" > "$out/chain.pem"
    ;;
  foreign)
    name=$3 out=$4
    mkdir -p "$out"
    tmp=$(mktemp -d)
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/key.pem" -out "$tmp/req.csr" \
      -subj "/CN=$name" -addext "subjectAltName=DNS:$name" 2>/dev/null
    "$0" sign "$dir" "$tmp/req.csr" "$out"
    rm -rf "$tmp"
    ;;
  *) echo "usage: $0 init|sign|foreign ..." >&2; exit 2 ;;
esac
