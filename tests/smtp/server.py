"""A real SMTP relay on loopback for the email integration tests (tests/api/smtp.rs starts it).

Built on aiosmtpd (pinned in requirements.txt, installed by tests/deps). It binds 127.0.0.1 on
port 0 and prints the bound port as the first line of standard output; it exits when its
standard input closes, so a test that dies leaves no process behind.

Each accepted message is written to --out as NNNNNN.eml (the raw bytes received after DATA),
preceded by NNNNNN.json (the envelope: sender and recipients); both appear atomically (written
under a temporary name, then renamed). The file `connections` in --out holds the number of
connections accepted so far, rewritten atomically on each new connection.

It offers PIPELINING (RFC 2920) in its EHLO reply, as common relays do, unless --no-pipelining is
given; aiosmtpd reads commands one line at a time, so pipelined commands are answered in order.
With --chunking it also offers CHUNKING (RFC 3030), as Postfix and Exim do: aiosmtpd has no BDAT,
so `ChunkingSMTP` adds it, joining the chunks into one message for the same handler. The .json
file says which command carried the message ("via": "DATA" or "BDAT").
"""

import argparse
import asyncio
import json
import os
import ssl
import sys
import threading

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword


def write_atomically(path, data):
    temporary = path + ".tmp"
    with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


class Handler:
    def __init__(self, args):
        self.args = args
        self.count = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        extra = [] if self.args.no_pipelining else ["250-PIPELINING"]
        if self.args.chunking:
            extra.append("250-CHUNKING")
        # Before the last line ("250 HELP"), which ends the reply.
        return responses[:-1] + extra + responses[-1:]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.args.reply_rcpt:
            return reply(self.args.reply_rcpt, "recipient refused by the test relay")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.args.delay_data_ms:
            await asyncio.sleep(self.args.delay_data_ms / 1000)
        if self.args.reply_data:
            return reply(self.args.reply_data, "message refused by the test relay")
        self.count += 1
        base = os.path.join(self.args.out, "%06d" % self.count)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "via": getattr(envelope, "via", "DATA"),
        }
        write_atomically(base + ".json", json.dumps(meta).encode())
        write_atomically(base + ".eml", envelope.original_content)
        return "250 2.0.0 Queued as test-%06d" % self.count


class ChunkingSMTP(SMTP):
    """aiosmtpd's SMTP with BDAT <size> [LAST] (RFC 3030)."""

    async def smtp_BDAT(self, arg):
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("BDAT"):
            return
        words = (arg or "").split()
        if (
            not words
            or not words[0].isdigit()
            or len(words) > 2
            or (len(words) == 2 and words[1].upper() != "LAST")
        ):
            await self.push("501 5.5.4 Syntax: BDAT <size> [LAST]")
            return
        # The chunk is read whatever the state, so that the next command is a command.
        try:
            chunk = await self._reader.readexactly(int(words[0]))
        except asyncio.IncompleteReadError:
            self._writer.close()
            return
        if self.envelope.mail_from is None or not self.envelope.rcpt_tos:
            # RFC 3030 §2: a BDAT after a refused MAIL or with no accepted RCPT is refused.
            await self.push("554 5.5.1 Error: no valid recipients")
            self._set_post_data_state()
            return
        chunks = getattr(self.envelope, "chunks", b"") + chunk
        if len(words) == 1:
            self.envelope.chunks = chunks
            await self.push("250 2.0.0 %d octets received" % len(chunk))
            return
        self.envelope.original_content = chunks
        self.envelope.content = chunks
        self.envelope.via = "BDAT"
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


def reply(code, text):
    enhanced = {"4": "4.3.0", "5": "5.7.1"}.get(str(code)[0], "")
    return "%s %s %s" % (code, enhanced, text) if enhanced else "%s %s" % (code, text)


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        # handled=False: aiosmtpd then answers 535 itself.
        return AuthResult(success=ok, handled=False)

    return authenticate


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth", help="USER:PASS; AUTH PLAIN and LOGIN, then required")
    parser.add_argument("--reply-rcpt", type=int, help="answer every RCPT with this code")
    parser.add_argument("--reply-data", type=int, help="answer DATA's end with this code")
    parser.add_argument("--delay-data-ms", type=int, default=0)
    parser.add_argument("--no-pipelining", action="store_true", help="do not offer PIPELINING")
    parser.add_argument("--chunking", action="store_true", help="offer CHUNKING (BDAT)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    context = None
    if args.tls != "none":
        if not (args.cert and args.key):
            parser.error("--tls starttls|implicit needs --cert and --key")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)

    handler = Handler(args)
    options = {"hostname": "relay.test", "ident": "Caputchin test relay"}
    if args.tls == "starttls":
        options.update(tls_context=context, require_starttls=True)
    if args.auth:
        user, _, password = args.auth.partition(":")
        options.update(
            authenticator=authenticator_for(user, password),
            auth_required=True,
            # With STARTTLS, AUTH only after it; implicit TLS is TLS from the first byte (aiosmtpd
            # cannot tell), and plain is for tests of plain relays.
            auth_require_tls=(args.tls == "starttls"),
        )

    connections = [0]
    counter = os.path.join(args.out, "connections")
    write_atomically(counter, b"0")

    def protocol():
        connections[0] += 1
        write_atomically(counter, str(connections[0]).encode())
        return (ChunkingSMTP if args.chunking else SMTP)(handler, **options)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(
            protocol, host="127.0.0.1", port=0, ssl=context if args.tls == "implicit" else None
        )
    )
    print(server.sockets[0].getsockname()[1], flush=True)

    def exit_when_stdin_closes():
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    loop.run_forever()


if __name__ == "__main__":
    main()
