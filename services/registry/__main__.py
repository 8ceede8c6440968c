from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from shared.service import run

settings = RegistrySettings()
run(create_app(settings), settings, settings.registry_port)
