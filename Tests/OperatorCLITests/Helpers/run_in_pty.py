#!/usr/bin/env python3
"""Runs a command with its standard output on a pseudo-terminal (as an operator's terminal) and its
standard error on a pipe; prints what the command wrote to the terminal, byte for byte, then exits with
the command's status. The command gets a small, known environment: PATH, HOME, TERM=xterm-256color
and each NAME=VALUE given with --env (so NO_COLOR is set only when asked for).

Usage: run_in_pty.py [--env NAME=VALUE]... -- COMMAND [ARG...]"""
import os
import pty
import subprocess
import sys

arguments = sys.argv[1:]
environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/"), "TERM": "xterm-256color"}
while arguments and arguments[0] == "--env":
    name, _, value = arguments[1].partition("=")
    environment[name] = value
    arguments = arguments[2:]
if arguments and arguments[0] == "--":
    arguments = arguments[1:]

leader, follower = pty.openpty()
process = subprocess.Popen(arguments, stdout=follower, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=environment)
os.close(follower)
chunks = []
while True:
    try:
        data = os.read(leader, 65536)
    except OSError:  # EIO: the command closed the terminal
        break
    if not data:
        break
    chunks.append(data)
status = process.wait()
sys.stderr.buffer.write(process.stderr.read())
sys.stdout.buffer.write(b"".join(chunks))
sys.exit(status)
