<?php
// Adminer for development, as scripts/dev-up.sh serves it: Debian's adminer
// package behind PHP's built-in server on 127.0.0.1 only. The development
// PostgreSQL trusts connections from this machine, so Adminer is told to
// accept the empty password it would otherwise refuse; nothing else changes.
function adminer_object() {
    include_once "/usr/share/adminer/plugins/plugin.php";
    include_once "/usr/share/adminer/plugins/version-noverify.php";

    class CrunchDevAdminer extends AdminerPlugin {
        function name() {
            return "Crunch (development)";
        }

        function login($login, $password) {
            return true;
        }
    }

    return new CrunchDevAdminer(array(new AdminerVersionNoverify()));
}

include "/usr/share/adminer/adminer.php";
