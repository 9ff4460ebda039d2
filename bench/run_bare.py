"""A bare mitmproxy reverse proxy with a pass-through addon (the benchmarks' baseline). Prints `PORT <n>`."""

from __future__ import annotations

import asyncio
import sys

from mitmproxy import http
from mitmproxy.options import Options
from mitmproxy.tools.dump import DumpMaster


class PassThrough:
    """What any useful addon does at least: touch a header; stream SSE instead of buffering it."""

    def request(self, flow: http.HTTPFlow) -> None:
        flow.request.headers["x-bench"] = "1"

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None and flow.response.headers.get("content-type", "").startswith("text/event-stream"):
            flow.response.stream = True


async def main(upstream: str) -> None:
    master = DumpMaster(Options(mode=[f"reverse:{upstream}@127.0.0.1:0"], listen_host="127.0.0.1"), with_termlog=False, with_dumper=False)
    master.options.update(connection_strategy="lazy", keep_host_header=True)
    master.addons.add(PassThrough())
    task = asyncio.ensure_future(master.run())
    while not master.addons.get("proxyserver").listen_addrs():
        await asyncio.sleep(0.01)
    print(f"PORT {master.addons.get('proxyserver').listen_addrs()[0][1]}", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
