#!/usr/bin/env bash
# `make test-ee` (part of `make test`): the kit run the way AWX runs it. An execution environment
# (EE) image is built from lab/ee/execution-environment.yml with ansible-builder (the collection's
# own meta/execution-environment.yml brings its requirements), then every job is `ansible-runner
# run` in a BRAND-NEW EE container: the project and the inventory mounted read-only, the job's
# private data directory (env/: credentials as AWX writes them; artifacts/) its own, nothing of
# the controller mounted. The hosts are lab containers with an SSH server (AWX's machine
# credential) on the Molecule network: a key manager (ftps_ca, Debian 12), a Debian 13 server (its
# Python is not the EE's: the image's wheelhouse resolved it for 3.13) and a Debian 12 client.
#   job 1  site.yml converges                           -> prints the CA's fingerprint
#   job 2  site.yml in a new container: changed=0       -> prints the CA's fingerprint (the same)
#   job 3  rotate.yml rotates behind its gate and writes its record on the key manager
#   job 4  report.yml and ca_rollover.yml (status) read that state -> prints job 3's record
# Credentials as AWX passes them: the vault password answers --ask-vault-pass (env/passwords),
# the CA passphrase is an extra var of a custom credential (env/extravars), the SSH key is
# env/ssh_key. The job artifacts, logs and what each job wrote in its container are then searched
# for every test secret.
#   lab/ee-jobs.sh [WORKDIR]     (default: a new temporary directory, removed on success)
# Environment: VENV (the controller venv: ansible-galaxy, ansible-builder, ansible-vault),
# FTPSKIT_EE_KEEP=1 keeps the lab containers after the run.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VENV:-$root/.venv}
# The Molecule network and the hosts' addresses: the lab's plan (lab/lab_addresses.py, job `ee`).
read -r network _ < <("$venv/bin/python" "$root/lab/lab_addresses.py" network) || network=
ee_image=localhost/ftpskit-ee:lab
# name, base image tag (12|13), groups
hosts=(
  "ee-km 12 ftps_ca"
  "ee-deb13 13 ftps_servers"
  "ee-client 12 ftps_clients"
)
step=preflight
[[ -n $network ]] || { echo "ee-jobs: no address plan (lab/lab_addresses.py network)" >&2; exit 1; }
fail() { echo "ee-jobs: step '$step' failed: $*" >&2; exit 1; }
say() { echo "ee-jobs: $*"; }
work=${1:-$(mktemp -d /tmp/ftpskit-ee.XXXXXX)}
trap 'rc=$?; ((rc == 0)) || echo "ee-jobs: step '"'"'$step'"'"' failed (exit $rc); work dir $work kept" >&2' EXIT
mkdir -p "$work"
[[ $work != "$root"* ]] || fail "the work directory must be outside the repository"
[[ $(id -u) -eq 0 ]] || fail "must run as root (rootful podman)"
for tool in podman ssh-keygen sha256sum tar; do command -v "$tool" >/dev/null || fail "$tool not found"; done
for tool in ansible-galaxy ansible-builder ansible-vault; do
  [[ -x $venv/bin/$tool ]] || fail "$venv/bin/$tool missing (make venv)"
done
for tag in 12 13; do
  podman image exists "localhost/ftpskit-debian:$tag" || fail "localhost/ftpskit-debian:$tag missing (make lab-images)"
done
start=$SECONDS

# --- the collection tarball and the EE image ---------------------------------------------------
step="collection build"
cache=$root/.cache/ee
mkdir -p "$cache"
version=$(sed -nE 's/^version:[[:space:]]*"?([^"]+)"?/\1/p' "$root/galaxy.yml")
rm -f "$cache/ftpskit-ftps-$version.tar.gz"
"$venv/bin/ansible-galaxy" collection build --force --output-path "$cache" "$root" >/dev/null \
  || fail "ansible-galaxy collection build"
# lab/ee/execution-environment.yml names the tarball without a version.
mv -f "$cache/ftpskit-ftps-$version.tar.gz" "$cache/ftpskit-ftps.tar.gz"

# Its dependencies (galaxy.yml: ansible.posix, community.general, and what those need), which the
# image's build would otherwise fetch from Galaxy (unreachable here): the copies in the venv's
# `ansible` package, as lab/installed-form.sh uses them, each named in lab/ee/requirements.yml.
step="collection dependencies"
site_collections=$("$venv/bin/python" -c 'import ansible_collections; print(ansible_collections.__path__[0])') \
  || fail "no ansible_collections in $venv (make venv)"
rm -rf "$cache/deps"
mkdir -p "$cache/deps"
for dep in $(sed -nE 's#^[[:space:]]*- name: collections/deps/([a-z0-9_]+\.[a-z0-9_]+)$#\1#p' "$root/lab/ee/requirements.yml"); do
  [[ -f $site_collections/${dep/.//}/MANIFEST.json ]] || fail "$dep is not in $site_collections"
  cp -a "$site_collections/${dep/.//}" "$cache/deps/$dep"
done
find "$cache/deps" -name __pycache__ -prune -exec rm -rf {} +

step="ee image"
context=$work/ee-context
rm -rf "$context"
"$venv/bin/ansible-builder" create -f "$root/lab/ee/execution-environment.yml" -c "$context" >/dev/null \
  || fail "ansible-builder create"
# The recipe: the build context ansible-builder wrote (the collection by its MANIFEST.json, which
# holds the checksum of every file, not by its tarball's timestamps) and the base image.
recipe=$(
  {
    (cd "$context" && find . -type f ! -name '*.tar.gz' -print0 | sort -z | xargs -0 sha256sum)
    tar -xzOf "$cache/ftpskit-ftps.tar.gz" MANIFEST.json FILES.json
    podman image inspect --format '{{.Id}}' localhost/ftpskit-debian:12
  } | sha256sum | cut -c1-16
)
have=$(podman image inspect --format '{{index .Labels "ftpskit.recipe"}}' "$ee_image" 2>/dev/null || true)
if [[ $have == "$recipe" ]]; then
  say "$ee_image is current (recipe $recipe), reused"
else
  old_id=$(podman image inspect --format '{{.Id}}' "$ee_image" 2>/dev/null || true)
  say "building $ee_image (recipe $recipe) from ansible-builder's context"
  # This machine reaches PyPI through a TLS-inspecting proxy: the build trusts what the host
  # trusts, mounted for the build only (nothing of it stays in the image).
  podman build --label "ftpskit.recipe=$recipe" -t "$ee_image" \
    -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
    "$context" >"$work/ee-build.log" 2>&1 || { tail -n 30 "$work/ee-build.log"; fail "podman build (log: $work/ee-build.log)"; }
  if [[ -n $old_id ]]; then podman rmi "$old_id" >/dev/null 2>&1 || true; fi
  say "built $ee_image in $((SECONDS - start)) s"
fi

step="host images"
for tag in 12 13; do
  image=localhost/ftpskit-ee-host:$tag
  base_id=$(podman image inspect --format '{{.Id}}' "localhost/ftpskit-debian:$tag")
  host_recipe=$({ cat "$root/lab/ee/host.Containerfile"; echo "$base_id"; } | sha256sum | cut -c1-16)
  have=$(podman image inspect --format '{{index .Labels "ftpskit.recipe"}}' "$image" 2>/dev/null || true)
  [[ $have == "$host_recipe" ]] && continue
  old_id=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  podman build --build-arg "BASE=localhost/ftpskit-debian:$tag" --label "ftpskit.recipe=$host_recipe" \
    -f "$root/lab/ee/host.Containerfile" -t "$image" "$root/lab/ee" >"$work/host-$tag.log" 2>&1 \
    || { tail -n 20 "$work/host-$tag.log"; fail "podman build $image"; }
  if [[ -n $old_id ]]; then podman rmi "$old_id" >/dev/null 2>&1 || true; fi
  say "built $image"
done

# --- the lab: our containers only, by name -----------------------------------------------------
remove_hosts() {
  local entry name
  for entry in "${hosts[@]}"; do
    read -r name _ <<<"$entry"
    if podman container exists "$name"; then podman rm -f -t 5 "$name" >/dev/null; fi
  done
}
step="lab"
bash "$root/lab/molecule-all.sh" --network >/dev/null || fail "the shared network $network"
# Each host at its planned address, every host's name in every container's /etc/hosts (also the
# job containers'): nothing here asks aardvark-dns for a lab name.
declare -A address=()
add_hosts=()
while read -r name ip; do
  address[$name]=$ip
  add_hosts+=(--add-host "$name:$ip")
done < <("$venv/bin/python" "$root/lab/lab_addresses.py" hosts ee)
remove_hosts
ssh-keygen -q -t ed25519 -N '' -C ftpskit-ee -f "$work/ssh_key"
for entry in "${hosts[@]}"; do
  read -r name tag _ <<<"$entry"
  [[ -n ${address[$name]:-} ]] || fail "$name has no address in the plan (lab/lab_addresses.py JOB_HOSTS)"
  podman run -d --name "$name" --hostname "$name" --network "$network" --ip "${address[$name]}" "${add_hosts[@]}" \
    --systemd=always --cap-add NET_ADMIN,NET_RAW --label ftpskit.lab=true \
    "localhost/ftpskit-ee-host:$tag" >/dev/null || fail "podman run $name"
done
for entry in "${hosts[@]}"; do
  read -r name _ <<<"$entry"
  waited=0
  until state=$(podman exec "$name" systemctl is-system-running 2>/dev/null) || [[ $state == degraded ]]; do
    ((waited < 90)) || fail "$name: systemd not running after 90 s (${state:-?})"
    sleep 1
    ((waited += 1))
  done
  podman cp "$work/ssh_key.pub" "$name:/root/.ssh/authorized_keys" || fail "authorized_keys on $name"
  podman exec "$name" chown root:root /root/.ssh/authorized_keys
done
[[ ${FTPSKIT_EE_KEEP:-0} == 1 ]] || trap 'rc=$?; remove_hosts; ((rc == 0)) || echo "ee-jobs: step '"'"'$step'"'"' failed (exit $rc); work dir $work kept" >&2' EXIT
say "lab up: ${hosts[*]%% *} on $network"

# --- the test secrets, the project and the inventory (read-only in every job) -------------------
step="inventory"
secret() { printf 'ee-%s-%s' "$1" "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
vault_password=$(secret vault)
ca_passphrase=$(secret ca)
user_password=$(secret alice)
secrets=("$vault_password" "$ca_passphrase" "$user_password")

project=$work/project
inventory=$work/inventory
rm -rf "$project" "$inventory"
mkdir -p "$project" "$inventory/group_vars/all" "$inventory/group_vars/ftps_servers" "$inventory/group_vars/ftps_clients"
# The project: the operator's repository, wiring the collection's playbooks (the collection
# itself is in the EE, as AWX runs it). fleet_status.yml is job 4: the report, the CA rollover's
# status and the last rotation's record, all read from the key manager's store.
for playbook in site rotate; do
  printf -- '---\n- name: ftpskit.ftps.%s from the EE\n  ansible.builtin.import_playbook: ftpskit.ftps.%s\n' \
    "$playbook" "$playbook" >"$project/$playbook.yml"
done
cat >"$project/fleet_status.yml" <<'YAML'
---
- name: The fleet's certificate report (its last report is kept in the store)
  ansible.builtin.import_playbook: ftpskit.ftps.report
- name: Where a CA rollover is (status; read from the store)
  ansible.builtin.import_playbook: ftpskit.ftps.ca_rollover
- name: The last rotation's record, read from the kit's store
  hosts: ftps_servers
  gather_facts: false
  tasks:
    - name: Find the kit's store
      ansible.builtin.import_role:
        name: ftpskit.ftps.ftps_pki
        tasks_from: store.yml
    - name: List the rotation records
      ansible.builtin.find:
        paths: "{{ ftps_pki_store_facts.dir }}/rotations"
        patterns: rotation-*.json
      delegate_to: "{{ ftps_pki_store_facts.host }}"
      become: "{{ ftps_pki_store_facts.become }}"
      run_once: true
      register: ee_records
    - name: Read the newest record
      ansible.builtin.slurp:
        src: "{{ (ee_records.files | sort(attribute='path') | last).path }}"
      delegate_to: "{{ ftps_pki_store_facts.host }}"
      become: "{{ ftps_pki_store_facts.become }}"
      run_once: true
      register: ee_record
    - name: Show it
      ansible.builtin.debug:
        msg: >-
          {%- set r = ee_record.content | b64decode | from_json -%}
          EE-RECORD id={{ r.id }} result={{ r.result }}
          {% for h in r.hosts %}{{ h.host }}:{{ h.result }}:{{ h.old.fingerprint_sha256[:16] }}->{{ h.new.fingerprint_sha256[:16] }} {% endfor %}
      run_once: true
YAML
{
  echo "all:"
  echo "  children:"
  for group in ftps_ca ftps_servers ftps_clients; do
    echo "    $group:"
    echo "      hosts:"
    for entry in "${hosts[@]}"; do
      read -r name _ groups <<<"$entry"
      [[ $groups == "$group" ]] && echo "        $name:"
    done
  done
} >"$inventory/hosts.yml"
cat >"$inventory/group_vars/all/main.yml" <<'YAML'
---
# AWX reaches hosts over SSH as its machine credential's user; the lab's host keys are throwaway.
ansible_user: root
ansible_python_interpreter: /usr/bin/python3
ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
# The EE carries a wheelhouse built once with the image: jobs build nothing.
ftps_server_wheelhouse_dir: /opt/ftps-kit/wheelhouse
ftps_server_wheelhouse_build: false
ftps_client_wheelhouse_dir: /opt/ftps-kit/wheelhouse
YAML
cat >"$inventory/group_vars/ftps_servers/main.yml" <<'YAML'
---
ftps_server_workers: 1
ftps_firewall_sources: [10.213.0.0/16]
ftps_users_accounts:
  - name: alice
    password: "{{ vault_ee_alice_password }}"
    perm: rw
YAML
cat >"$inventory/group_vars/ftps_clients/main.yml" <<'YAML'
---
ftps_site_probe_user: alice
ftps_site_probe_password: "{{ vault_ee_alice_password }}"
YAML
printf '%s' "$vault_password" >"$work/vault-password"
printf -- '---\nvault_ee_alice_password: %s\n' "$user_password" >"$inventory/group_vars/all/vault.yml"
"$venv/bin/ansible-vault" encrypt --vault-password-file "$work/vault-password" \
  "$inventory/group_vars/all/vault.yml" >/dev/null || fail "ansible-vault encrypt"
rm -f "$work/vault-password"
# The project's own ansible.cfg, as an operator's repository has one: one SSH exec per task.
printf '[defaults]\ninterpreter_python = auto_silent\nnocolor = true\n[ssh_connection]\npipelining = true\n' \
  >"$project/ansible.cfg"
chmod -R a+rX "$project" "$inventory"

# --- one job: a new EE container, a new private data directory ---------------------------------
# job NAME PLAYBOOK [EXTRA-VARS-JSON]: writes $work/jobs/NAME/{env,artifacts}; the playbook's
# recap is left in $work/jobs/NAME/artifacts/NAME/stdout.
job() {
  local name=$1 playbook=$2 extra=${3:-'{}'} dir=$work/jobs/$1 rc=0 t0=$SECONDS
  step="job $name ($playbook)"
  mkdir -p "$dir/env" "$dir/artifacts"
  # What AWX writes into a job's private data directory: the machine credential's key, the
  # vault credential's password answering --ask-vault-pass, the custom credential's extra vars.
  cp "$work/ssh_key" "$dir/env/ssh_key"
  printf '{"^Vault password:\\\\s*?$": "%s"}\n' "$vault_password" >"$dir/env/passwords"
  python3 -c 'import json, sys; print(json.dumps({**json.loads(sys.argv[2]), "ftps_pki_ca_passphrase": sys.argv[1]}))' \
    "$ca_passphrase" "$extra" >"$dir/env/extravars"
  printf -- '--ask-vault-pass\n' >"$dir/env/cmdline"
  podman rm -f "ee-job-$name" >/dev/null 2>&1 || true
  podman run --name "ee-job-$name" --network "$network" "${add_hosts[@]}" \
    -v "$project:/runner/project:ro" -v "$inventory:/runner/inventory:ro" \
    -v "$dir/env:/runner/env" -v "$dir/artifacts:/runner/artifacts" \
    "$ee_image" ansible-runner run /runner -p "$playbook" --ident "$name" >"$dir/runner.log" 2>&1 || rc=$?
  # What the job wrote inside its container (its layer over the image, not the mounts), kept
  # for the secrets check, then the container goes like AWX's.
  podman diff "ee-job-$name" | awk '$1 != "D" {print $2}' >"$dir/container-changes"
  mnt=$(podman mount "ee-job-$name")
  while read -r path; do
    [[ -f $mnt$path ]] && printf '%s\0' "$mnt$path"
  done <"$dir/container-changes" | xargs -0 -r grep -lF -e "${secrets[0]}" -e "${secrets[1]}" -e "${secrets[2]}" \
    >"$dir/container-secrets" || true
  podman umount "ee-job-$name" >/dev/null
  podman rm -f "ee-job-$name" >/dev/null
  # the recap only (the full log stays in the work dir)
  sed -n '/^PLAY RECAP/,$p' "$dir/runner.log" | sed "s/^/ee-jobs: $name: /"
  ((rc == 0)) || { tail -n 40 "$dir/runner.log"; fail "ansible-runner exited $rc (log: $dir/runner.log)"; }
  say "$name: $playbook in $((SECONDS - t0)) s, a new container"
}

# The fleet's CA: the key manager's (the store) and the one the client trusts must be the same.
store=/var/lib/ftps-kit
ca_fingerprint() {
  local km client
  km=$(podman exec ee-km openssl x509 -noout -fingerprint -sha256 -in "$store/pki/ca/ca.pem" | cut -d= -f2) || return 1
  client=$(podman exec ee-client sh -c 'cat /usr/local/share/ca-certificates/ftps-kit-*.crt' \
    | openssl x509 -noout -fingerprint -sha256 | cut -d= -f2) || return 1
  [[ $km == "$client" ]] || { echo "ee-jobs: the client trusts $client, the key manager's CA is $km" >&2; return 1; }
  echo "$km"
}
recap_changed() { # the sum of changed= over the job's recap
  sed -n '/^PLAY RECAP/,$p' "$work/jobs/$1/artifacts/$1/stdout" | grep -oE 'changed=[0-9]+' | cut -d= -f2 \
    | awk '{s += $1} END {print s + 0}'
}

# --- the four jobs -----------------------------------------------------------------------------
job job1 site.yml
ca1=$(ca_fingerprint) || fail "no CA on the client after job 1"
say "CA after job 1: $ca1"

job job2 site.yml
ca2=$(ca_fingerprint) || fail "no CA on the client after job 2"
changed2=$(recap_changed job2)
say "CA after job 2: $ca2"
say "job 2 changed=$changed2"
[[ $ca1 == "$ca2" ]] || fail "job 2 made another CA ($ca1 -> $ca2)"
((changed2 == 0)) || fail "job 2 changed $changed2 things (log: $work/jobs/job2/runner.log)"

job job3 rotate.yml
step="job 3's record"
record=$(podman exec ee-km sh -c "ls $store/rotations/" | grep -E '^rotation-.*\.json$' | sort | tail -n1) \
  || fail "no rotation record on the key manager after job 3"
record_id=${record#rotation-}
record_id=${record_id%.json}
# (a role's task shows as "TASK [ftpskit.ftps.ftps_fleet : Judge the gate]")
grep -qE 'TASK \[([a-z_.]+ : )?Judge the gate\]' "$work/jobs/job3/artifacts/job3/stdout" || fail "job 3 ran no gate"
say "job 3 wrote $store/rotations/$record on ee-km"

job job4 fleet_status.yml
step="job 4 read the state"
out4=$work/jobs/job4/artifacts/job4/stdout
read_back=$(grep -oE 'EE-RECORD id=[^ ]+ result=[a-z]+( [^ "]+)*' "$out4" | head -n1)
say "job 4 read: $read_back"
[[ $read_back == "EE-RECORD id=$record_id result=complete"* ]] || fail "job 4 did not read job 3's record $record_id"
grep -qE 'ee-deb13:rotated:' <<<"$read_back" || fail "job 3's record does not show ee-deb13 rotated"
# The report (deployed, in memory, on the wire) shows the certificate job 3's record says it issued.
rotated_to=$(sed -E 's/.*ee-deb13:rotated:[0-9a-f]+->([0-9a-f]+).*/\1/' <<<"$read_back")
grep -E '"ee-deb13 +OK ' "$out4" | grep -qF "${rotated_to:0:11}" \
  || fail "job 4's report does not show ee-deb13 serving ${rotated_to:0:11}… (job 3's new certificate)"
grep -q "written to ee-km:$store/reports/" "$out4" || fail "job 4's report is not in the key manager's store"
grep -qE 'TASK \[([a-z_.]+ : )?Show the rollover\]' "$out4" || fail "job 4 did not show the CA rollover's status"

# --- no secret in the artifacts, the logs or the job containers ---------------------------------
step="secrets"
for s in "${secrets[@]}"; do
  # env/ is the job's input (AWX writes the credentials there); everything the jobs wrote is not.
  if grep -rlF -D skip -- "$s" "$work"/jobs/*/artifacts "$work"/jobs/*/runner.log; then
    fail "a test secret is in the job output above"
  fi
done
if [[ -n $(cat "$work"/jobs/*/container-secrets) ]]; then
  cat "$work"/jobs/*/container-secrets
  fail "a job left a test secret in its container (files above)"
fi
say "no test secret (vault password, CA passphrase, vaulted user password) in $(find "$work"/jobs/*/artifacts -type f | wc -l) artifact files, the job logs or the $(cat "$work"/jobs/*/container-changes | wc -l) paths the jobs changed in their containers"
step=done
say "passed in $((SECONDS - start)) s"
if [[ -z ${1:-} ]]; then rm -rf "$work"; fi
