"""The on-call path: `/killswitch` in Slack (slack-bolt over HTTP), served by `killswitch serve`.

Parse → authorize → start a run; the run itself is the same `contain` flow as the CLI's,
in the warm service process, with its progress posted to a thread.
"""
