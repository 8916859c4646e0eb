#!/usr/bin/env python3
"""HS256 JWTs for the integration tests, made at test time with the standard library (nothing leaves
this machine).

  test_tokens.py jwks DIR                 a new random key: DIR/jwks.json (kid "test") and DIR/hs256.key
  test_tokens.py token DIR NAME CLAIMS    writes DIR/NAME: a token signed with DIR/hs256.key; CLAIMS is
                                          JSON, where "exp_in" / "iat_in" are seconds from now

Scripts that make tokens over time import it: make_key(), load_key(), sign(), write_atomically().
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_key(directory):
    key = os.urandom(32)
    with open(os.path.join(directory, "jwks.json"), "w") as out:
        json.dump({"keys": [{"kty": "oct", "kid": "test", "alg": "HS256", "k": b64(key)}]}, out)
    with open(os.path.join(directory, "hs256.key"), "wb") as out:
        out.write(key)
    for name in ("jwks.json", "hs256.key"):
        os.chmod(os.path.join(directory, name), 0o600)
    return key


def load_key(directory):
    with open(os.path.join(directory, "hs256.key"), "rb") as source:
        return source.read()


def sign(key, claims):
    now = int(time.time())
    claims = dict(claims)
    for relative, absolute in (("exp_in", "exp"), ("iat_in", "iat")):
        if relative in claims:
            claims[absolute] = now + int(claims.pop(relative))
    header = b64(json.dumps({"alg": "HS256", "kid": "test", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(key, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


def write_atomically(path, text):
    """Writes `text` to `path` (mode 0600) so that a reader sees the old file or the new one."""
    with open(path + ".new", "w") as out:
        out.write(text)
    os.chmod(path + ".new", 0o600)
    os.rename(path + ".new", path)


def main(arguments):
    if len(arguments) == 2 and arguments[0] == "jwks":
        make_key(arguments[1])
        return 0
    if len(arguments) == 4 and arguments[0] == "token":
        directory, name, claims = arguments[1], arguments[2], json.loads(arguments[3])
        write_atomically(os.path.join(directory, name), sign(load_key(directory), claims) + "\n")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
