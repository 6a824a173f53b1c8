"""Files a person can manage (docs/protocol.md §5): DELETE and RENAME, atomic
and within the folder, never over another file, each told to the room as a
FILE event; the name rules of every other file command."""

import os

from harness.clients import TpktClient, open_room, run_nc


def test_delete_and_rename_are_news(server, connect_tpkt, connect_line):
    (a,), (watcher,) = open_room(server, connect_tpkt, connect_line, 1, 1)
    (server.data_dir / "report.pdf").write_bytes(b"pdf")
    (server.data_dir / "old notes.txt").write_bytes(b"notes")
    assert a.cmd('RENAME "old notes.txt" notes.txt') == "OK renamed"
    assert watcher.wait_event(lambda e: e.startswith("FILE ")) == \
        f'FILE {a.nick} renamed "old notes.txt" notes.txt'
    assert (server.data_dir / "notes.txt").read_bytes() == b"notes"
    assert not (server.data_dir / "old notes.txt").exists()
    assert watcher.cmd("DELETE report.pdf") == "OK deleted"
    # Everyone hears it, the one who did it too (the chat shows it as done).
    assert a.wait_event(lambda e: e.startswith("FILE ") and "deleted" in e) == \
        f"FILE {watcher.nick} deleted report.pdf"
    assert not (server.data_dir / "report.pdf").exists()
    assert a.cmd("LIST") == "OK 1\n5 notes.txt"


def test_errors(server, connect_line):
    c = connect_line(server)
    (server.data_dir / "a").write_bytes(b"a")
    (server.data_dir / "b").write_bytes(b"b")
    assert c.cmd("DELETE nosuch") == "ERR no such file: nosuch"
    assert c.cmd("RENAME nosuch x") == "ERR no such file: nosuch"
    assert c.cmd("RENAME a b") == "ERR file exists: b"       # never over a file
    assert (server.data_dir / "b").read_bytes() == b"b"
    assert c.cmd("RENAME a a") == "ERR file exists: a"
    assert c.cmd("RENAME a ../escape") == "ERR invalid file name"
    assert c.cmd("RENAME a .bottle") == "ERR invalid file name"
    assert c.cmd("DELETE .bottle") == "ERR invalid file name"
    assert c.cmd("DELETE") == "ERR file name required"
    assert c.cmd("RENAME a") == "ERR usage: RENAME <name> <new name>"
    assert c.cmd("DELETE a b") == "ERR usage: DELETE <name>"
    assert (server.data_dir / "a").exists()


def test_only_regular_files(server, connect_line, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep me")
    os.symlink(outside, server.data_dir / "link")
    os.mkdir(server.data_dir / "folder")
    c = connect_line(server)
    assert c.cmd("DELETE link") == "ERR no such file: link"
    assert c.cmd("RENAME link other") == "ERR no such file: link"
    assert c.cmd("DELETE folder") == "ERR no such file: folder"
    assert outside.read_bytes() == b"keep me"
    assert (server.data_dir / "link").is_symlink()


def test_a_transfer_connection_is_credited_to_its_chatter(server, connect_tpkt):
    (alice, watcher), _ = open_room(server, connect_tpkt, None, 2, 0)
    (server.data_dir / "x").write_bytes(b"x")
    files = TpktClient(server.port, first=f"ROLE files {alice.nick.lower()}".encode())
    assert files.hello() == "OK files"
    assert files.cmd("RENAME x y") == "OK renamed"
    assert watcher.wait_event(lambda e: e.startswith("FILE ")) == \
        f"FILE {alice.nick} renamed x y"
    # Without a chatter to work for, a transfer connection is its own guest.
    anon = TpktClient(server.port, first=b"ROLE files")
    assert anon.hello() == "OK files"
    assert anon.cmd("DELETE y") == "OK deleted"
    assert watcher.wait_event(lambda e: e.startswith("FILE ")) == \
        f"FILE {anon.nick} deleted y"
    # Nobody by that name: refused.
    bad = TpktClient(server.port, first=b"ROLE files nobody")
    assert bad.hello() == "ERR no member nobody on your host"


def test_from_nc(server):
    (server.data_dir / "draft.txt").write_bytes(b"d")
    out = run_nc(server.port, "RENAME draft.txt final.txt\nLIST\nQUIT\n").stdout.decode()
    assert "OK renamed" in out.splitlines()
    assert (server.data_dir / "final.txt").exists()


def nc_upload(port, name, data):
    return run_nc(port, f"UPLOAD {name} {len(data)}\n".encode() + data).stdout.decode()


def test_upload_is_news_once(server, connect_line):
    watcher = connect_line(server)
    watcher.sync()
    out = nc_upload(server.port, "hello.txt", b"hello")
    assert out.splitlines()[-1].startswith("OK 5 ")
    ev = watcher.wait_event(lambda e: e.startswith("FILE "))
    assert ev.startswith("FILE Guest") and ev.endswith(" uploaded 5 hello.txt"), ev
    watcher.sync()
    assert not [e for e in watcher.take_events() if e.startswith("FILE ")]


def test_max_storage(make_server, connect_line):
    srv = make_server("--max-storage", "1K")
    srv.wait_log(r"storage: 0 of 1024 bytes used \(--max-storage\)")
    assert nc_upload(srv.port, "a", b"x" * 600).splitlines()[-1].startswith("OK 600 ")
    out = nc_upload(srv.port, "b", b"y" * 600).splitlines()
    assert out[1] == "ERR storage full: 600 of 1024 bytes used, 600 more needed", out
    assert not (srv.data_dir / "b").exists()
    srv.wait_log(r"upload of 600 bytes refused: 600 of 1024 bytes used")
    # A partial counts, and nothing of a refused one is left behind.
    assert list((srv.data_dir / ".bottle" / "partial").glob("*.data")) == []
    c = connect_line(srv)
    assert c.cmd("DELETE a") == "OK deleted"
    assert nc_upload(srv.port, "b", b"y" * 600).splitlines()[-1].startswith("OK 600 ")


def test_sizes_take_suffixes(make_server):
    srv = make_server("--max-storage", "1.5K", "--max-file-size", "2k")
    srv.wait_log(r"storage: 0 of 1536 bytes used")
