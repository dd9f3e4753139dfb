"""What the ledger answers for a command."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The case's version after the command, and the global position of the case's last event.

    ``position`` is the consistency token: a reader that has seen it has seen this command's effect.
    ``events_recorded`` is 0 when the command was accepted but changed nothing (e.g. a transfer to the
    current owner). ``replayed`` tells that this is the stored answer to an earlier identical command.
    """

    case_id: str
    command_id: str
    version: int
    position: int
    events_recorded: int
    replayed: bool = False

    def as_replayed(self) -> CommandResult:
        return CommandResult(
            self.case_id, self.command_id, self.version, self.position, self.events_recorded, True
        )
