# Sourced by start.sh when JIGSAW_KAFKA_SECURE=1 (not run on its own): a broker a client
# reaches only over TLS with a SCRAM password, for development and the tests.
#
# Made fresh at each start in $KAFKA_STATE/secure (mode 0700):
#   ca.pem, ca.key          a throwaway CA (valid 7 days) that signs everything below
#   broker.pem, broker.p12  the broker's certificate for 127.0.0.1 and localhost, and its PKCS12 keystore
#   jigsaw.password         the SCRAM password of the client user "jigsaw" (SCRAM-SHA-512 and -256)
#   client.env              JIGSAW_KAFKA_* for a client of the SASL_SSL listener
#   client.pem, client.key  with JIGSAW_KAFKA_SSL_PORT: a client certificate (CN=jigsaw) for the
#   client-ssl.env          SSL listener, which requires one, and the variables for that listener
#
# The SCRAM users are written into the metadata by `StorageTool format --add-scram` (KRaft has no
# ZooKeeper to hold them). The broker talks to itself over SASL_SSL as the user "broker"; the
# controller listener stays PLAINTEXT on 127.0.0.1, inside this one machine. Passwords are random
# hex from openssl; server.properties (which holds them) is 0600. StorageTool takes the SCRAM
# passwords on its command line (it has no file option), visible to `ps` on this machine for the
# second it runs: acceptable for a throwaway test broker, not for a real one.
#
# Sets for start.sh: secure_dir, listener_props, format_args, client_env.

if ! command -v openssl >/dev/null; then
    echo "start.sh: JIGSAW_KAFKA_SECURE=1 needs 'openssl' to make the certificates (apt-get install openssl)" >&2
    exit 1
fi
secure_dir="$KAFKA_STATE/secure"
rm -rf "$secure_dir"
(umask 077 && mkdir -p "$secure_dir")

_ssl() {  # openssl quietly, its complaint shown only when it fails
    if ! openssl "$@" >"$secure_dir/openssl.out" 2>&1; then
        echo "start.sh: openssl $1 failed while making the test certificates:" >&2
        cat "$secure_dir/openssl.out" >&2
        exit 1
    fi
}

_issue() {  # _issue NAME SUBJECT EXTENSIONS: a P-256 key and a certificate the CA signs
    printf '%b' "$3" >"$secure_dir/$1.ext"
    _ssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
        -keyout "$secure_dir/$1.key" -out "$secure_dir/$1.csr"
    _ssl x509 -req -in "$secure_dir/$1.csr" -CA "$secure_dir/ca.pem" -CAkey "$secure_dir/ca.key" \
        -CAcreateserial -days 7 -extfile "$secure_dir/$1.ext" -out "$secure_dir/$1.pem"
    rm -f "$secure_dir/$1.csr" "$secure_dir/$1.ext"
}

(
    umask 077
    _ssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
        -subj "/CN=Jigsaw Kafka test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$secure_dir/ca.key" -out "$secure_dir/ca.pem"
    # serverAuth and clientAuth: the broker is also a client of its own SASL_SSL listener.
    _issue broker "/CN=localhost" \
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n"
    if [[ -n "$ssl_port" ]]; then
        _issue client "/CN=jigsaw" "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n"
    fi
    openssl rand -hex 24 >"$secure_dir/keystore.password"
    _ssl pkcs12 -export -name kafka -in "$secure_dir/broker.pem" -inkey "$secure_dir/broker.key" \
        -certfile "$secure_dir/ca.pem" -passout "file:$secure_dir/keystore.password" -out "$secure_dir/broker.p12"
    openssl rand -hex 24 >"$secure_dir/jigsaw.password"
    openssl rand -hex 24 >"$secure_dir/broker.password"
)
rm -f "$secure_dir/openssl.out"
chmod 0644 "$secure_dir/ca.pem"  # the CA certificate is public; keys and passwords stay 0600

_store_pw="$(cat "$secure_dir/keystore.password")"
_client_pw="$(cat "$secure_dir/jigsaw.password")"
_broker_pw="$(cat "$secure_dir/broker.password")"
_scram="org.apache.kafka.common.security.scram.ScramLoginModule required"

_listeners="SASL_SSL://127.0.0.1:$KAFKA_PORT"
[[ -n "$ssl_port" ]] && _listeners="$_listeners,SSL://127.0.0.1:$ssl_port"
listener_props="listeners=$_listeners,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=$_listeners
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$_scram username=\"broker\" password=\"$_broker_pw\";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=$_scram;
ssl.keystore.type=PKCS12
ssl.keystore.location=$secure_dir/broker.p12
ssl.keystore.password=$_store_pw
ssl.key.password=$_store_pw
ssl.truststore.type=PEM
ssl.truststore.location=$secure_dir/ca.pem
ssl.endpoint.identification.algorithm=https
ssl.enabled.protocols=TLSv1.3,TLSv1.2
listener.name.ssl.ssl.client.auth=required"

format_args=(
    --add-scram "SCRAM-SHA-512=[name=broker,password=$_broker_pw]"
    --add-scram "SCRAM-SHA-512=[name=jigsaw,password=$_client_pw]"
    --add-scram "SCRAM-SHA-256=[name=jigsaw,password=$_client_pw]"
)

client_env="$secure_dir/client.env"
{
    echo "# Written by deploy/kafka/start.sh: a client of the SASL_SSL listener (set -a; . this file; set +a)."
    printf '%s=%q\n' \
        JIGSAW_KAFKA_BOOTSTRAP "127.0.0.1:$KAFKA_PORT" \
        JIGSAW_KAFKA_SECURITY_PROTOCOL SASL_SSL \
        JIGSAW_KAFKA_SSL_CA_FILE "$secure_dir/ca.pem" \
        JIGSAW_KAFKA_SASL_MECHANISM SCRAM-SHA-512 \
        JIGSAW_KAFKA_SASL_USERNAME jigsaw \
        JIGSAW_KAFKA_SASL_PASSWORD_FILE "$secure_dir/jigsaw.password"
} >"$client_env"
if [[ -n "$ssl_port" ]]; then
    {
        echo "# Written by deploy/kafka/start.sh: a client of the SSL listener, with a client certificate."
        printf '%s=%q\n' \
            JIGSAW_KAFKA_BOOTSTRAP "127.0.0.1:$ssl_port" \
            JIGSAW_KAFKA_SECURITY_PROTOCOL SSL \
            JIGSAW_KAFKA_SSL_CA_FILE "$secure_dir/ca.pem" \
            JIGSAW_KAFKA_SSL_CERT_FILE "$secure_dir/client.pem" \
            JIGSAW_KAFKA_SSL_KEY_FILE "$secure_dir/client.key"
    } >"$secure_dir/client-ssl.env"
fi
unset _store_pw _client_pw _broker_pw
