#!/usr/bin/env bash
# Supply chain check of one Python environment: a CycloneDX SBOM of what is installed in it
# (cyclonedx-py) and a pip-audit of the same packages against the PyPI vulnerability data.
#
#   ops/ci/supply-chain.sh <python of the environment> <output directory>
#
# Writes <out>/sbom.json, <out>/requirements-audited.txt, <out>/pip-audit.txt and a one-line
# <out>/pip-audit-status.txt. Exits non-zero
# when a dependency has a known vulnerability or cannot be audited. When the vulnerability
# service cannot be reached at all (a sandbox without internet access), it says so loudly,
# records "NOT RUN" in pip-audit.txt and exits 0, unless VEZE_REQUIRE_AUDIT=1 (set where the
# network is expected, as in the GitHub workflow), which makes that a failure too.
# The tools come from the environment's own bin/ unless SUPPLY_CHAIN_TOOLS names another one.
set -euo pipefail
python=${1:?usage: $0 <python> <output directory>}
out=${2:?usage: $0 <python> <output directory>}
tools=${SUPPLY_CHAIN_TOOLS:-$(dirname "$python")}
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
mkdir -p "$out"

"$tools/cyclonedx-py" environment --pyproject pyproject.toml --mc-type application \
  --output-format JSON --output-file "$out/sbom.json" "$python"
"$python" -c "import json, sys; bom = json.load(open(sys.argv[1])); print('SBOM:', sys.argv[1], 'CycloneDX', bom['specVersion'], len(bom['components']), 'components')" "$out/sbom.json"

# The project itself is not on PyPI; everything else is pinned exactly as installed.
"$python" -m pip freeze --all --exclude-editable | grep -v -i '^veze-uniqverse[= @]' >"$out/requirements-audited.txt"
audit=("$tools/pip-audit" --strict --no-deps --disable-pip --progress-spinner off)

# Probe with one package first, so "the service is unreachable" is told apart from findings.
probe_requirements=$(mktemp)
probe_output=$(mktemp)
trap 'rm -f "$probe_requirements" "$probe_output"' EXIT
grep -i '^pip==' "$out/requirements-audited.txt" >"$probe_requirements" \
  || echo "pip==$("$python" -m pip --version | cut -d' ' -f2)" >"$probe_requirements"
if ! "${audit[@]}" -r "$probe_requirements" >"$probe_output" 2>&1 \
  && grep -q -i -e 'not found on PyPI' -e 'ConnectionError' -e 'Max retries exceeded' \
    -e 'Name or service not known' -e 'Temporary failure in name resolution' "$probe_output"; then
  {
    echo "pip-audit: NOT RUN - the vulnerability service could not be reached from this machine:"
    tail -n 3 "$probe_output"
  } | tee "$out/pip-audit.txt"
  echo "NOT RUN (the vulnerability service could not be reached; see $out/pip-audit.txt)" \
    >"$out/pip-audit-status.txt"
  echo "!! The dependency audit did not run. Run it where PyPI's JSON API is reachable:"
  echo "!!   ops/ci/supply-chain.sh $python $out   (the GitHub workflow does, with VEZE_REQUIRE_AUDIT=1)"
  if [ "${VEZE_REQUIRE_AUDIT:-0}" = "1" ]; then exit 1; fi
  exit 0
fi

count=$(wc -l <"$out/requirements-audited.txt")
echo "pip-audit: $count packages"
if "${audit[@]}" --desc on -r "$out/requirements-audited.txt" 2>&1 | tee "$out/pip-audit.txt"; then
  echo "passed: no known vulnerabilities in $count packages" >"$out/pip-audit-status.txt"
else
  echo "FAILED: known vulnerabilities or unauditable packages (see $out/pip-audit.txt)" \
    >"$out/pip-audit-status.txt"
  exit 1
fi
