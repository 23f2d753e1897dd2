#!/bin/bash
# TLS certificates for ONE Dask cluster (one job), so that only holders of them can talk to its scheduler,
# workers and nannies (every one of which would run code sent to it as the job's owner):
#
#   bash examples/slurm/make_dask_certs.sh DIR [NAME]
#
# creates DIR (it must not exist; its parent must) with mode 700 and writes, with OpenSSL only:
#   DIR/ca.pem    a new certificate authority, made for this cluster only (its private key is deleted
#                 as soon as it has signed the one certificate below, so nobody can sign another);
#   DIR/cert.pem  the certificate that the scheduler, the workers and the clients all present (Dask's TLS
#                 checks both sides against ca.pem: mutual TLS; it does not check host names);
#   DIR/key.pem   its private key (mode 600).
# Pass them to `dask scheduler|worker --tls-ca-file DIR/ca.pem --tls-cert DIR/cert.pem --tls-key DIR/key.pem`
# and `python -m dgnlib.sweep run ... --tls-ca-file ... --tls-cert ... --tls-key ...`. DIR must be on a file
# system that every node sees; delete it when the cluster has stopped (table1.sbatch does). NAME (default
# dgnlib-dask) goes into the certificates' subject. Keys: ECDSA P-256; valid for 365 days.
set -euo pipefail
[[ $# -ge 1 && $# -le 2 && -n $1 ]] || { echo "usage: $0 DIR [NAME]" >&2; exit 2; }
dir=$1
name=${2:-dgnlib-dask}
command -v openssl >/dev/null || { echo "$0: openssl not found (needed for the Dask TLS certificates)" >&2; exit 1; }
umask 077
# mkdir without -p fails if DIR exists: never reuse a folder that someone else could have made or filled
mkdir -m 700 -- "$dir" || { echo "$0: cannot create $dir (it must not exist yet, its parent must)" >&2; exit 1; }
[[ -O $dir && $(stat -c %a -- "$dir") == 700 ]] || { echo "$0: $dir is not a private folder of $(id -un)" >&2; exit 1; }
ext="$dir/ext.cnf"
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth,clientAuth" >"$ext"
quiet() { local out; out=$("$@" 2>&1) || { echo "$out" >&2; echo "$0: failed: $*" >&2; return 1; }; }
newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
quiet openssl req -x509 "${newkey[@]}" -days 365 -subj "/CN=$name CA" -keyout "$dir/ca.key" -out "$dir/ca.pem"
quiet openssl req -new "${newkey[@]}" -subj "/CN=$name" -keyout "$dir/key.pem" -out "$dir/cert.csr"
quiet openssl x509 -req -in "$dir/cert.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days 365 -extfile "$ext" -out "$dir/cert.pem"
rm -f -- "$dir/ca.key" "$dir/cert.csr" "$ext"
chmod 600 -- "$dir/key.pem"
chmod 644 -- "$dir/ca.pem" "$dir/cert.pem"
quiet openssl verify -CAfile "$dir/ca.pem" "$dir/cert.pem"
