"""The client's side of accounts: bottle --user NAME with the token from
BOTTLE_TOKEN or ~/.config/bottle/tokens, AUTH first on every connection the
chat, -c and the transfers make (reconnects included), and a clear end when
the server refuses it.

Servers listen on 127.0.0.1; every process is stopped by PID.
"""

import os
import re
import shlex
import signal
import subprocess

import pytest

from harness.clients import LineChatClient
from harness.env import BOTTLE, BOTTLED, wait_until
from test_xfer_client import bottles, file_size, partial_glob  # noqa: F401 (a fixture)


def add_user(users, name, perms):
    r = subprocess.run([BOTTLED, "--users", str(users), "--add-user", name, "--perms", perms],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()[-1]


@pytest.fixture
def users(tmp_path):
    return tmp_path / "users"


@pytest.fixture
def tokens(users):
    return {"alice": add_user(users, "alice", "chat,read,write"),
            "reader": add_user(users, "reader", "read")}


def bottle(user_env, *args, extra_env=None, cwd=None, timeout=20):
    env = dict(user_env)
    env.pop("BOTTLE_USER", None)
    env.pop("BOTTLE_TOKEN", None)
    env.update(extra_env or {})
    return subprocess.run([BOTTLE, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL, cwd=cwd)


def write_tokens(user_env, text, mode=0o600):
    path = os.path.join(user_env["HOME"], ".config", "bottle", "tokens")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def test_command_with_bottle_token(make_server, users, tokens, user_env):
    srv = make_server("--users", users)
    addr = f"127.0.0.1:{srv.port}"
    r = bottle(user_env, "--user", "alice", "-c", "WHO", addr,
               extra_env={"BOTTLE_TOKEN": tokens["alice"]})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "OK 1 alice"
    r = bottle(user_env, "-c", "WHO", addr,
               extra_env={"BOTTLE_USER": "alice", "BOTTLE_TOKEN": tokens["alice"]})
    assert r.stdout.strip() == "OK 1 alice", r.stderr
    # without an account: a guest, refused
    r = bottle(user_env, "-c", "WHO", addr)
    assert r.returncode == 1 and r.stdout.startswith("ERR permission denied: WHO needs chat")


def test_a_refused_auth_ends_clearly(make_server, users, tokens, user_env):
    srv = make_server("--users", users)
    addr = f"127.0.0.1:{srv.port}"
    wrong = {"BOTTLE_TOKEN": "0" * 64}
    r = bottle(user_env, "--user", "alice", "-c", "TIME", addr, extra_env=wrong)
    assert r.returncode == 1
    assert "cannot sign in as alice: authentication failed" in r.stderr
    r = bottle(user_env, "--user", "alice", "ls", addr, extra_env=wrong)
    assert r.returncode == 1 and "cannot sign in as alice" in r.stderr, r.stderr
    r = bottle(user_env, "-c", "TIME", addr, extra_env={"BOTTLE_TOKEN": tokens["alice"]})
    assert r.returncode == 2 and "BOTTLE_USER" in r.stderr


def test_tokens_file(make_server, users, tokens, user_env, tmp_path):
    srv = make_server("--users", users)
    addr = f"127.0.0.1:{srv.port}"
    path = write_tokens(user_env, f"# mine\nalice {'f' * 64}\n{addr} alice {tokens['alice']}\n"
                                  f"reader {tokens['reader']}\n")
    r = bottle(user_env, "--user", "alice", "-c", "WHO", addr)
    assert r.returncode == 0 and r.stdout.strip() == "OK 1 alice", r.stderr  # the address wins
    r = bottle(user_env, "--user", "reader", "ls", addr)
    assert r.returncode == 0, r.stderr
    os.chmod(path, 0o644)
    r = bottle(user_env, "--user", "alice", "-c", "WHO", addr)
    assert r.returncode == 2
    assert f"{path} may be read by others (mode 0644)" in r.stderr
    assert f"chmod 600 {path}" in r.stderr
    os.chmod(path, 0o600)
    r = bottle(user_env, "--user", "nobody", "-c", "WHO", addr)
    assert r.returncode == 2 and "no token for nobody" in r.stderr


def test_transfers_sign_in(make_server, users, tokens, user_env, tmp_path):
    srv = make_server("--users", users)
    addr = f"127.0.0.1:{srv.port}"
    src = tmp_path / "notes.txt"
    src.write_bytes(os.urandom(100_000))
    alice = {"BOTTLE_TOKEN": tokens["alice"]}
    reader = {"BOTTLE_TOKEN": tokens["reader"]}
    r = bottle(user_env, "--user", "reader", "put", src, addr, extra_env=reader)
    assert r.returncode == 1 and "permission denied: UPLOAD needs write" in r.stderr, r.stderr
    r = bottle(user_env, "--user", "alice", "put", src, addr, extra_env=alice)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    out.mkdir()
    r = bottle(user_env, "--user", "reader", "get", "notes.txt", addr, extra_env=reader,
               cwd=out)
    assert r.returncode == 0, r.stderr
    assert (out / "notes.txt").read_bytes() == src.read_bytes()
    r = bottle(user_env, "--user", "reader", "rm", "notes.txt", addr, extra_env=reader)
    assert r.returncode == 1 and "permission denied" in r.stderr + r.stdout
    r = bottle(user_env, "--user", "alice", "mv", "notes.txt", "n2.txt", addr, extra_env=alice)
    assert r.returncode == 0, r.stderr
    # every connection signed in: put's, get's, rm's, mv's
    def count(who):
        return sum(f"signed in as {who}" in line for line in srv.log_lines())
    wait_until(lambda: count("alice") >= 2 and count("reader") >= 3, 5, "the sign-ins logged")


def test_chat_reconnect_signs_in_again(make_server, users, tokens, tmux_sessions, user_env):
    srv = make_server("--users", users)
    port = srv.port
    cmd = (f"env -u BOTTLE_SERVER HOME={shlex.quote(user_env['HOME'])} "
           f"BOTTLE_TOKEN={tokens['alice']} {shlex.quote(BOTTLE)} --user alice "
           f"--retry-for 30 127.0.0.1:{port}; echo exit=$?; sleep 60")
    t = tmux_sessions(cmd)
    t.wait_text("connected to")
    srv.wait_log(r"signed in as alice")
    srv.signal(signal.SIGKILL)
    assert srv.wait(timeout=5) == -signal.SIGKILL
    t.wait_text("reconnecting...")
    srv2 = make_server("--users", users, listen=(f"127.0.0.1:{port}",), data_dir=srv.data_dir)
    srv2.wait_log(r"signed in as alice", timeout=30)
    lines = t.wait(lambda ls: any(re.search(r"\* back \(away \d+\.\d s\) as alice$", l)
                                  for l in ls), "the back line", timeout=30)
    assert not any("could not take back" in l for l in lines), lines
    with LineChatClient(port) as other:
        other.greeting()
        t.type("hello again")
        # a guest hears nothing (no chat permission); alice's message is logged
        srv2.wait_log(r"alice: hello again")
    t.type("/quit")
    t.wait_text("exit=0")


def test_a_transfer_signs_in_again_after_a_restart(make_server, users, tokens, user_env,
                                                   tmp_path, bottles):
    """put --user: the server dies mid-upload; the reconnect says AUTH again
    and resumes the account's own partial."""
    srv = make_server("--users", users)
    port = srv.port
    data = os.urandom(2 * 1024 * 1024)
    (tmp_path / "f.bin").write_bytes(data)
    env = dict(user_env, BOTTLE_TOKEN=tokens["alice"])
    b = bottles(["--user", "alice", "put", "f.bin", "--limit-rate", "1M", "--retry-for", "30",
                 f"127.0.0.1:{port}"], env, tmp_path)
    wait_until(lambda: file_size(partial_glob(srv.data_dir)) >= 256 * 1024, 10,
               "the server's partial to grow")
    srv.signal(signal.SIGKILL)
    assert srv.wait(timeout=5) == -signal.SIGKILL
    srv2 = make_server("--users", users, listen=(f"127.0.0.1:{port}",), data_dir=srv.data_dir)
    assert b.wait(timeout=30) == 0, b.stderr()
    srv2.wait_log(r"signed in as alice")
    m = re.search(r"resumed at (\d+)", b.stderr())
    assert m and int(m.group(1)) > 0, b.stderr()
    assert (srv.data_dir / "f.bin").read_bytes() == data
