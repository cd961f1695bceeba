"""Provider registry: where the council, as market maker, brings local providers into its
network and keeps the record of who they are and what they can do."""
