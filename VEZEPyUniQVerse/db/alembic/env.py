from VEZEPyCore.db.migrations import run_env
from VEZEPyUniQVerse.db.models import Base

run_env(Base.metadata)
