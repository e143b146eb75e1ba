"""``python -m analyzer.schemas``: write the shipped schema files from their parts."""
from analyzer.schemas import write_shipped

write_shipped()
