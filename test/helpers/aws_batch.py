"""Runs many `aws` command lines in one Python process, through the same entry point as
/usr/bin/aws (awscli.clidriver), to keep CLI conformance tests fast: starting Python and
loading botocore costs about a second per process. Reads one JSON array of argv lists on
stdin; writes one JSON array of {rc, stdout, stderr} on stdout."""
import contextlib
import io
import json
import os
import sys

if os.environ.get('LC_CTYPE', '') == 'UTF-8':
    os.environ['LC_CTYPE'] = 'en_US.UTF-8'
sys.path.insert(0, '/usr/lib/python3/dist-packages')
import awscli.clidriver  # noqa: E402

results = []
for argv in json.load(sys.stdin):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = awscli.clidriver.AWSCLIEntryPoint().main(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
    results.append({'rc': rc, 'stdout': out.getvalue(), 'stderr': err.getvalue()})
sys.__stdout__.write(json.dumps(results))
