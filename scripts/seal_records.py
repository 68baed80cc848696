"""Seal the committed records that have no seal yet (:func:`kdlib.results.seal`).

Records written since the seals came carry one; this gives the older committed records
theirs, so that a metric edited by hand in any of them is refused when it is read. A seal
made now vouches for no edit after this commit, not for how a number was computed: that
is what ``kdlib verify`` shows, bit for bit on the kind of CPU that made a record.

    python scripts/seal_records.py            # every profile with `committed: true`
"""

from __future__ import annotations

import sys

from kdlib import config, paths, results


def main() -> int:
    sealed = kept = 0
    for yaml_path in sorted(paths.profiles_dir().glob("*.yaml")):
        if not config.read(yaml_path).committed:
            continue
        for path in sorted((paths.results_dir() / yaml_path.stem).glob("*/*.json")):
            record = results.load_record(path)  # refuses a damaged one
            if record.seal is not None:
                kept += 1
                continue
            results.write_record(path, results.sealed(record.json()))
            sealed += 1
    print(f"sealed {sealed} records; {kept} had a seal already")
    return 0


if __name__ == "__main__":
    sys.exit(main())
