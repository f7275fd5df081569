"""Verifies webhook deliveries with the Standard Webhooks reference library.

Usage: verify.py SECRET < deliveries.jsonl

Each input line is {"headers": {name: value}, "body": "<base64>"}, one
delivery as a receiver got it. Each output line is "ok" or "refused: <why>",
in the same order. The check is the library's own (`Webhook.verify`): our
code has no part in it, so a delivery that passes here passes for any
receiver using the specification's libraries.
"""

import base64
import json
import sys

from standardwebhooks.webhooks import Webhook


def main() -> None:
    webhook = Webhook(sys.argv[1])
    for line in sys.stdin:
        delivery = json.loads(line)
        try:
            webhook.verify(base64.b64decode(delivery["body"]), delivery["headers"])
            print("ok")
        except Exception as error:  # the library's refusal, reported as data
            print(f"refused: {error}")


if __name__ == "__main__":
    main()
