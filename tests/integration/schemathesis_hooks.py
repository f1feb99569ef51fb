"""schemathesis hooks of the REST gateway's fuzzing (loaded by the `st` process, not by pytest): any text
of a body that could be a URL (it holds "://") becomes the test's own image URL on loopback, so that the
service never fetches anything beyond this machine; each call is counted in $SIGHTD_HOOKS_LOG (the test
checks that the hook ran)."""

import os

import schemathesis

LOCAL_IMAGE = os.environ["SIGHTD_LOCAL_IMAGE"]


def _local(value):
    if isinstance(value, dict):
        return {key: _local(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_local(item) for item in value]
    if isinstance(value, str) and "://" in value:
        return LOCAL_IMAGE
    return value


@schemathesis.hook
def map_body(context, body):
    with open(os.environ["SIGHTD_HOOKS_LOG"], "a") as log:
        log.write("map_body\n")
    return _local(body)
