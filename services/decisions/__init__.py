"""Stage 3, decisions (决策): ballots, frozen voter rolls, votes, resolutions and the publicity period."""
