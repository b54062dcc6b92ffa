<?php
// Debian's Adminer with the official image's ADMINER_DEFAULT_SERVER.
function adminer_object() {
    include_once "/usr/share/adminer/plugins/plugin.php";
    include_once "/usr/share/adminer/plugins/version-noverify.php";
    class AdminerDefaultServer {
        function loginFormField($name, $heading, $value) {
            $server = getenv('ADMINER_DEFAULT_SERVER');
            if ($name == 'server' && $server) {
                return $heading . str_replace('value=""', 'value="' . h($server) . '"', $value);
            }
        }
    }
    return new AdminerPlugin(array(new AdminerVersionNoverify(), new AdminerDefaultServer()));
}
include "/usr/share/adminer/adminer.php";
