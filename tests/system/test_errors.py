"""Errors that name the rule (issue 12 §2): one wording for an unknown verb
whether run or asked about, no empty verb in a reply, the nickname rule
spelled out."""

from harness.clients import run_nc


def test_unknown_verb_one_wording(server, connect_line, connect_tpkt):
    for c in (connect_line(server), connect_tpkt(server)):
        assert c.cmd("FOO") == "ERR unknown command: FOO"
        assert c.cmd("HELP FOO") == "ERR unknown command: FOO"
        assert c.cmd("HELP echo").startswith("OK ECHO <text>: ")


def test_spaces_are_no_command(server):
    out = run_nc(server.port, "   \n  ECHO padded\nQUIT\n").stdout.decode()
    lines = out.splitlines()
    assert lines[1] == "ERR empty command: start with a command's name; HELP lists them"
    assert lines[2] == "OK padded"
    assert lines[3] == "OK bye"


def test_invalid_nickname_states_the_rule(server, connect_line):
    c = connect_line(server)
    assert c.cmd("NICK a/b") == "ERR invalid nickname: 1-32 letters, digits or _-.[]"
    assert c.cmd("NICK " + "x" * 33) == "ERR invalid nickname: 1-32 letters, digits or _-.[]"
